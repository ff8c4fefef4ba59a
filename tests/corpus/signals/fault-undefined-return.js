// expect: fault undef
flux('undef', () => ({ update: () => undefined }));
