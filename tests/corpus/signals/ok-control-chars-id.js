// expect: ok 2
flux('\x1b[2J\x1b[Hforged', () => ({ update: () => 0.1 }));
flux('line\nbreak\r\u009b', () => ({ update: () => 0.1 }));
