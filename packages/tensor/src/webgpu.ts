// Installs Dawn's WebGPU globals (GPUBufferUsage, GPUMapMode, …) before any module uses them.
import { globals } from "webgpu";

Object.assign(globalThis, globals);
