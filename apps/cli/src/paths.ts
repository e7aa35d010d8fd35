// pnpm runs scripts from the workspace root; INIT_CWD is where the user typed the command.
import { resolve } from "node:path";

/** A path the user typed, resolved against the directory they ran `pnpm eye` from. */
export const userPath = (p: string): string => resolve(process.env.INIT_CWD ?? process.cwd(), p);
