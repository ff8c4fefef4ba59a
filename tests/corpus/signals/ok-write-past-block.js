// expect: ok 1
// today: sound-changed FIXME a signal writing past its 64 slots corrupts its neighbour (issue 10 item 6)
flux('vandal', (mem, idx) => ({ update: () => { for (let i = 64; i < 256; i++) mem[idx - 128 + i] = 7; return 0; } }));
