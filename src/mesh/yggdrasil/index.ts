export { addressForKey, formatIPv6, isPublicKeyHex, subnetForKey } from "./address.ts";
export {
  YggdrasilAdmin,
  YggdrasilAdminError,
  changePeers,
  waitForAdmin,
  type AdminErrorKind,
  type AdminOptions,
  type PeerInfo,
  type TreeEntry,
  type SelfInfo,
} from "./admin.ts";
export { configHash, peerUri, renderConfig, type PeerSpec, type RenderOptions } from "./config.ts";
export { writeConfigFile } from "./config-file.ts";
export { IDENTITY_FILE, loadOrCreateIdentity, publicKeyFromSeed, type Identity } from "./identity.ts";
export { startYggdrasil, stopYggdrasil, yggdrasilArgv, type StartOptions } from "./process.ts";
export { assertSameMajor, detectYggdrasil, type Major, type YggdrasilInfo } from "./version.ts";
