// @tessera/verify: the package's entry point (being built; see issue 22).
export {};
