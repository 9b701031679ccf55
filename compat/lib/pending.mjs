// Features the suite covers but engram has not built yet. Their tests are
// written against the Letta wire spec and skipped, with the reason, while
// their name is listed here. $ENGRAM_COMPAT_PENDING overrides the list (a
// comma-separated list of names; empty runs everything).
const defaults = {};

const names =
  process.env.ENGRAM_COMPAT_PENDING === undefined
    ? Object.keys(defaults)
    : process.env.ENGRAM_COMPAT_PENDING.split(',').map((s) => s.trim()).filter(Boolean);

// pending(name) is the `skip` option of a test: false when the feature is not
// pending, else the reason it is skipped.
export function pending(name) {
  if (!names.includes(name)) return false;
  return `pending: ${defaults[name] ?? name} (run with ENGRAM_COMPAT_PENDING= to include it)`;
}
