// model/ip-family.ts answers as node:net's isIP does (it replaces it for speed, not for other rules).
import { isIP as nodeIsIP } from 'node:net';
import { isIP } from '../../src/model/ip-family.js';

const CASES = [
  '10.0.0.1', '255.255.255.255', '0.0.0.0', '10.0.0.01', '10.0.0', '10.0.0.256', '1.2.3.4.5', ' 10.0.0.1', '10.0.0.1 ',
  'fd00::1', '::', '::1', 'fe80::1%eth0', 'fe80::1%', 'fe80::1%a b', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1::2::3',
  '::ffff:1.2.3.4', '::ffff:1.2.3', ':', ':::', 'fd00::/64', 'gggg::1', '2001:db8::1', '2001:DB8::A', '', 'localhost', '10.0.0.1/24',
];

test.each(CASES)('%j: the family node:net gives', (s) => {
  expect(isIP(s)).toBe(nodeIsIP(s));
});
