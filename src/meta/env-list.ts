// An environment as OCI specs and exec(3) give it, a list of NAME=value, as the object that
// child_process takes. An entry without '=' names nothing and is left out.

export function envFromList(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of list) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
