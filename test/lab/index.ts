export {
  cleanupStaleLabs,
  DEFAULT_BASE_DIR,
  DEFAULT_PREFIX,
  Lab,
  listLabs,
  REGISTRY_DIR,
  type ExecOptions,
  type ExecResult,
  type LabLink,
  type LabNode,
  type LabOptions,
  type LabSummary,
  type Topology,
} from "./lab.ts";
export { linkAddresses, parseTopology, segmentAddress, topologyLinks } from "./addressing.ts";
export { sleep, waitFor, type WaitOptions } from "./wait.ts";
