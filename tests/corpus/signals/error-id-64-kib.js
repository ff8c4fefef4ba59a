// expect: error 2:* an id is at most 256 bytes, not 65536
flux('x'.repeat(65536), () => ({ update: () => 0 }));
