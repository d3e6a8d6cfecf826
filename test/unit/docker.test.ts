// Docker guests, pure parts: the plugin's network options, and finding a container by the word typed in nslab's records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { networkFromOptions } from '../../src/engine/docker/plugin.js';
import { findRecordedContainer, writeDockerRecord, readDockerRecords, isContainerId } from '../../src/model/docker.js';

describe('plugin network options', () => {
  test('a Linux bridge keeps the gateway; an OVS bridge takes a VLAN tag; a parent makes macvlans', () => {
    expect(networkFromOptions({ 'nslab.bridge': 'br20' }, '10.20.0.1/24')).toEqual({ kind: 'bridge', host: 'br20', gateway: '10.20.0.1/24' });
    expect(networkFromOptions({ 'nslab.bridge': 'ovs-br9', 'nslab.vlan': '10' }, '10.30.0.1/24')).toEqual({ kind: 'ovs', host: 'ovs-br9', vlan: 10 });
    expect(networkFromOptions({ 'nslab.bridge': 'sw0', 'nslab.ovs': 'true' }, undefined)).toEqual({ kind: 'ovs', host: 'sw0' });
    expect(networkFromOptions({ 'nslab.parent': 'eth0', 'nslab.mtu': '1400' }, '192.168.1.1/24')).toEqual({ kind: 'macvlan', host: 'eth0', mtu: 1400 });
  });
  test.each([
    [{ 'nslab.bridge': 'ovs-br9', 'nslab.vlan': '5000' }, /nslab\.vlan="5000": expected a VLAN tag from 1 to 4094/],
    [{ 'nslab.bridge': 'br1', 'nslab.vlan': '10' }, /VLAN tags need an Open vSwitch bridge/],
    [{}, /needs exactly one of --opt nslab\.bridge=NAME or --opt nslab\.parent=IFNAME/],
    [{ 'nslab.bridge': 'br1', 'nslab.parent': 'eth0' }, /exactly one of/],
    [{ 'nslab.bridge': 'a-bridge-name-too-long' }, /nslab\.bridge="a-bridge-name-too-long"/],
    [{ 'nslab.bridge': 'br1', 'nslab.colour': 'red' }, /option nslab\.colour: unknown; expected one of nslab\.bridge/],
    [{ 'nslab.bridge': 'br1', 'nslab.mtu': 'big' }, /nslab\.mtu="big": expected an MTU from 68 to 65535 bytes/],
  ])('%j is refused in one line', (opts, msg) => {
    expect(() => networkFromOptions(opts, undefined)).toThrow(msg);
  });
});

describe('records by full container ID', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-unit-docker-'));
  const idA = 'a'.repeat(8) + '1'.repeat(56);
  const idB = 'a'.repeat(8) + '2'.repeat(56);
  beforeAll(() => {
    process.env.NSLAB_STATE_DIR = join(dir, 'state');
    process.env.NSLAB_DATA_DIR = join(dir, 'data');
    const at = new Date().toISOString();
    const request = { guest: idA, hostIf: 'br1', ifname: 'eth1', addresses: [], routes: [], hostAccess: false, direct: false };
    writeDockerRecord({ id: idA, name: 'c2', attaches: [{ ifname: 'eth1', host: 'br1', request, persist: false, at }] }, false);
    writeDockerRecord({ id: idB, name: 'web', attaches: [{ ifname: 'eth1', host: 'br1', request: { ...request, guest: idB }, persist: true, at }] }, true);
  });
  afterAll(() => {
    delete process.env.NSLAB_STATE_DIR;
    delete process.env.NSLAB_DATA_DIR;
    rmSync(dir, { recursive: true, force: true });
  });
  test('a name, a unique prefix or the full ID finds the container Docker forgot; an ambiguous prefix finds none', () => {
    expect(isContainerId(idA)).toBe(true);
    expect(findRecordedContainer('c2')).toEqual({ id: idA, name: 'c2' });
    expect(findRecordedContainer('/web')).toEqual({ id: idB, name: 'web' });
    expect(findRecordedContainer('aaaaaaaa1')?.id).toBe(idA);
    expect(findRecordedContainer(idB)?.name).toBe('web');
    expect(findRecordedContainer('aaaaaaaa')).toBeNull();
    expect(findRecordedContainer('nosuch')).toBeNull();
  });
  test('a record without attaches is removed', () => {
    writeDockerRecord({ id: idA, name: 'c2', attaches: [] }, false);
    expect(readDockerRecords(false)).toEqual([]);
  });
});
