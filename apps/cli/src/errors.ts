// Errors a user can cause (bad flags, missing data or weights, damaged checkpoints) print one
// line and exit 1; anything else is a bug and keeps its stack trace.
const USER_ERRORS = new Set([
  "OptionsError", "CheckpointError", "DataError", "DatasetError", "HubError", "ConfigError", "ImageError", "ShapesError",
  "PrepareError", "MetricsError", "SafetensorsError", "StateDictError", "TokenizerError", "UsageError", "LoaderError", "FeatureCacheError",
]);

export function isUserError(e: unknown): e is Error {
  return e instanceof Error && (USER_ERRORS.has(e.name) || USER_ERRORS.has(e.constructor.name));
}

/** Runs a command body; a user error becomes `eye <command>: message` on stderr and exit code 1. */
export async function reportErrors(command: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (!isUserError(e)) throw e;
    const msg = e.message.startsWith(`${command}:`) ? e.message : `${command}: ${e.message}`;
    process.stderr.write(`${msg}\n`);
    process.exitCode = 1;
  }
}
