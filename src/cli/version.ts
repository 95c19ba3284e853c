declare const RAPTIFORMICA_VERSION: string;
export const VERSION = typeof RAPTIFORMICA_VERSION === "string" ? RAPTIFORMICA_VERSION : "0.0.0-dev";
