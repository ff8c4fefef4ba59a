// expect: fault huge
// today: ok 1 FIXME a signal beyond ±1000 is not a fault yet (issue 10 item 6, the fault-path helper)
flux('huge', () => ({ update: () => 1e308 }));
