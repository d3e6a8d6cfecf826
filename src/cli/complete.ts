// Shell completion: `nslab completion bash|zsh|fish` prints a script; the script asks
// `nslab --get-yargs-completions WORDS…` (yargs), which answers here with what exists right now.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { packageRoot, stateDir } from '../paths.js';
import { invalid } from '../errors.js';
import { reportError } from './output.js';

/** The shells `nslab completion` writes a script for. */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

/**
 * The completion script of `shell`. Each one calls `nslab --get-yargs-completions` with the words
 * before the cursor and SHELL set to the shell it is (yargs formats descriptions for zsh and fish
 * by SHELL); bash falls back to file names when nslab offers nothing (`-o default`).
 * Adapted from yargs' own templates (lib/completion-templates.js), which read SHELL to pick one.
 */
export function completionScript(shell: Shell): string {
  switch (shell) {
    case 'bash':
      return `# nslab completion for bash. Install: nslab completion bash > /etc/bash_completion.d/nslab
# (or for this shell only: source <(nslab completion bash))
_nslab_completions() {
  local cur=\${COMP_WORDS[COMP_CWORD]} words
  mapfile -t words < <(SHELL=bash nslab --get-yargs-completions "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  mapfile -t COMPREPLY < <(compgen -W "$(printf '%q ' "\${words[@]}")" -- "$cur")
  # a folder: go on typing its files, no space after it
  if [[ \${#COMPREPLY[@]} -eq 1 && \${COMPREPLY[0]} == */ ]]; then compopt -o nospace; fi
  return 0
}
complete -o bashdefault -o default -F _nslab_completions nslab
`;
    case 'zsh':
      return `#compdef nslab
# nslab completion for zsh. Install: nslab completion zsh > "\${fpath[1]}/_nslab" (then compinit),
# or for this shell only: source <(nslab completion zsh)
_nslab() {
  local reply
  local si=$IFS
  IFS=$'\\n' reply=($(SHELL=zsh nslab --get-yargs-completions "\${(@)words[2,CURRENT]}" 2>/dev/null))
  IFS=$si
  if [[ \${#reply} -gt 0 ]]; then
    _describe 'values' reply
  else
    _files
  fi
}
if [[ "\${zsh_eval_context[-1]}" == "loadautofunc" ]]; then
  _nslab "$@"
else
  compdef _nslab nslab
fi
`;
    case 'fish':
      return `# nslab completion for fish. Install: nslab completion fish > ~/.config/fish/completions/nslab.fish
complete -c nslab -f -a '(SHELL=fish nslab --get-yargs-completions (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`;
  }
}

/** `nslab completion [bash|zsh|fish]` */
export const completionCommand: CommandModule<object, { shell?: string }> = {
  command: 'completion [shell]',
  describe: 'Print the shell completion script (commands, options, lab ids, node, network and file names)',
  builder: (y) =>
    y
      .positional('shell', { type: 'string', choices: [...SHELLS], describe: 'the shell (default: the one $SHELL names)' })
      .example('source <($0 completion bash)', 'complete in this bash')
      .example('$0 completion bash > /etc/bash_completion.d/nslab', 'in every new bash')
      .example('$0 completion zsh > "${fpath[1]}/_nslab"', 'zsh (then run compinit)')
      .example('$0 completion fish > ~/.config/fish/completions/nslab.fish', 'fish') as unknown as Argv<{ shell?: string }>,
  handler: (a) => {
    try {
      const shell = a.shell ?? basename(process.env.SHELL ?? '');
      if (!(SHELLS as readonly string[]).includes(shell)) throw invalid(`completion: no shell named and $SHELL is ${JSON.stringify(process.env.SHELL ?? '')}: expected one of ${SHELLS.join(', ')} (nslab completion bash)`);
      process.stdout.write(completionScript(shell as Shell));
    } catch (err) {
      reportError(err, false);
    }
  },
};

/** Lab ids (`01`, `02`, …) from the labs/ folder of this installation. */
function labIds(): string[] {
  return ls(join(packageRoot(), 'labs')).filter((n) => /^\d\d-/.test(n)).map((n) => n.slice(0, 2));
}

/** Named netns (`ip netns list`), read from /run/netns. */
function netnsNames(): string[] {
  return ls('/run/netns');
}

/** Nodes and networks of `nslab node` / `nslab network`, from their state file (engine/netmodes/netstate.ts). */
function netState(): { nodes: string[]; networks: string[] } {
  try {
    const st = JSON.parse(readFileSync(join(stateDir(), 'net', 'state.json'), 'utf8')) as { nodes?: object; networks?: object };
    return { nodes: Object.keys(st.nodes ?? {}), networks: Object.keys(st.networks ?? {}) };
  } catch {
    return { nodes: [], networks: [] };
  }
}

/** Interfaces of this namespace (for --to): /sys/class/net, lo left out. */
function interfaces(): string[] {
  return ls('/sys/class/net').filter((n) => n !== 'lo');
}

/** Topology files: folders and *.yaml / *.yml under the folder `current` is typing into. */
function yamlFiles(current: string): string[] {
  const dir = current.includes('/') ? current.slice(0, current.lastIndexOf('/') + 1) : '';
  return ls(dir || '.')
    .filter((n) => !n.startsWith('.') || current.slice(dir.length).startsWith('.'))
    .flatMap((n) => {
      const p = dir + n;
      if (isDir(p)) return [`${p}/`];
      return /\.ya?ml$/.test(n) ? [p] : [];
    });
}

function ls(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * What to offer for the word being typed, from what exists here: null when yargs' own answer
 * (commands, options, choices) is the right one.
 * @param words the words before the one being typed, from the command on (`['lab', 'run']`)
 * @param current the word being typed (may be empty)
 */
export function dynamicCompletions(words: string[], current: string): string[] | null {
  if (current.startsWith('-')) return null;
  const [cmd, sub] = words;
  const prev = words[words.length - 1] ?? '';
  const n = words.length;
  const st = () => netState();
  if (prev === '--to') return interfaces();
  if (prev === '--net' || prev === '--network') return ['none', 'host', 'bridge', ...st().networks, ...st().nodes.map((x) => `container:${x}`)];
  if (prev === '-f' || prev === '--file') return yamlFiles(current);
  if (prev.startsWith('-')) return null;
  switch (cmd) {
    case 'up':
    case 'down':
    case 'plan':
      return n === 1 ? yamlFiles(current) : null;
    case 'verify':
    case 'pingall':
    case 'graph':
      if (n === 1) return ['lab', ...(cmd === 'verify' ? ['attachments'] : []), ...yamlFiles(current)];
      if (n === 2 && sub === 'attachments') return netnsNames();
      return n === 2 && sub === 'lab' ? labIds() : null;
    case 'lab':
      if (n === 2 && sub !== 'ls') return labIds();
      return n === 3 && sub === 'shell' ? netnsNames() : null;
    case 'node':
      if (n >= 2 && (sub === 'inspect' || sub === 'rm')) return st().nodes;
      return n === 2 && sub === 'exec' ? st().nodes : null;
    case 'network':
      if (n >= 2 && (sub === 'inspect' || sub === 'rm')) return st().networks;
      if (sub === 'connect' || sub === 'disconnect') return n === 2 ? st().networks : n === 3 ? [...st().nodes, ...netnsNames()] : null;
      return null;
    case 'attach':
    case 'detach':
      return n === 1 ? netnsNames() : null;
    case 'clean':
      return [...new Set([...labIds(), ...st().networks, ...st().nodes, ...yamlFiles(current)])];
    default:
      return null;
  }
}

/**
 * yargs' completion function (`.completion(cmd, desc, fn)` with a fallback): what exists here for
 * the word being typed, else yargs' default (commands, options, choices).
 */
export function complete(current: string, argv: { _: Array<string | number> }, fallback: (cb: (err: Error | null, list?: string[]) => void) => void, done: (list: string[]) => void): void {
  const words = argv._.map(String);
  if (words[0] === 'nslab') words.shift();
  if (words.length && words[words.length - 1] === current) words.pop();
  // Options typed so far count as words (--to, --net): yargs leaves them out of argv._.
  // Only under yargs' completion call: elsewhere (a test runner's own argv) there are no such words.
  const at = process.argv.indexOf('--get-yargs-completions');
  const raw = at < 0 ? [] : process.argv.slice(at + 1);
  if (raw[0] === 'nslab') raw.shift();
  const before = raw.slice(0, current === '' && raw[raw.length - 1] === '' ? -1 : current === raw[raw.length - 1] ? -1 : undefined);
  const prev = before[before.length - 1] ?? '';
  const ctx = prev.startsWith('-') ? [...words, prev] : words;
  const dyn = dynamicCompletions(ctx, current);
  if (dyn !== null) return done(dyn.filter((w) => w.startsWith(current)));
  fallback((_err, list) => done(list ?? []));
}
