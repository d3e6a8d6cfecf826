// `nslab ui FILE | lab ID [--port P]`: the web page of a running topology or lab, on 127.0.0.1 only.
import type { Argv, CommandModule } from 'yargs';
import { reportError, requireRoot } from './output.js';
import { loadFor, withFile } from './topology.js';

interface UiArgs {
  file: string;
  id?: string;
  host?: string;
  port?: string;
  json: boolean;
}

/** `nslab ui FILE`, `nslab ui lab ID` */
export const uiCommand: CommandModule<object, UiArgs> = {
  command: 'ui <file> [id]',
  describe: 'A local web page of a running topology or lab: its graph, live state, pingall, link down/up, captures',
  builder: (y) =>
    withFile(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'topology file (YAML) that is up, or "lab" followed by a lab id' })
      .positional('id', { type: 'string', describe: 'with "lab": the lab id; the lab must be up here (nslab lab up ID)' })
      .option('port', { type: 'string', describe: 'TCP port on 127.0.0.1 (default: any free one)' })
      .example('$0 ui examples/star.yaml', 'prints http://127.0.0.1:PORT/?token=...; open it in a browser; Ctrl-C stops')
      .example('$0 sandbox -- sh -c "nslab lab up 09 && nslab ui lab 09 --port 8080"', 'lab 09 with its OVS tags, on port 8080') as Argv<UiArgs>,
  handler: async (a) => {
    try {
      const { checkPort, startUi } = await import('../engine/live/ui.js');
      const port = a.port === undefined ? undefined : /^\d+$/.test(a.port.trim()) ? Number(a.port) : NaN;
      if (port !== undefined) checkPort(port, a.port);
      const { ExecRunner } = await import('../exec/runner.js');
      const r = new ExecRunner();
      let m;
      let title: string;
      if (a.file === 'lab') {
        const { invalid } = await import('../errors.js');
        if (!a.id) throw invalid('ui lab needs a lab id: nslab ui lab 09 (nslab lab ls)');
        const { loadLab } = await import('../model/lab.js');
        const lab = await loadLab(a.id);
        requireRoot();
        const { readLabModel } = await import('../engine/labs/lab.js');
        m = await readLabModel(r, lab, { build: false });
        title = `lab ${lab.id}: ${lab.title.en}`;
      } else {
        const t = await loadFor(a);
        requireRoot();
        const { requireUp } = await import('../verify/pingall.js');
        await requireUp(r, t.model, `nslab up ${a.file} first`);
        m = t.model;
        title = `topology ${m.name}`;
      }
      const ui = await startUi(r, m, { title, ...(port !== undefined ? { port } : {}) });
      process.stdout.write(`nslab ui: ${ui.url}\n(listening on 127.0.0.1 only; Ctrl-C stops)\n`);
      // Ends cleanly on Ctrl-C and on SIGTERM: the server, its event streams and captures, then exit.
      await new Promise<void>((res) => {
        const stop = () => res();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await ui.close();
      process.stderr.write('nslab ui: stopped\n');
    } catch (err) {
      reportError(err, a.json);
    }
  },
};
