/**
 * OpenSSH hands the remote side one command line for its login shell; there is no argv
 * transport. Every word is therefore single-quoted here, so data (paths, keys, hosts) is never
 * interpreted by the remote shell. This is the one place such a string is built.
 */
export function shellQuote(word: string): string {
  if (word === "") return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}

export function remoteCommandLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
