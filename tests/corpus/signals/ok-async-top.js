// expect: ok 1
async function later() { return 0.1; }
later();
flux('as', () => ({ update: () => 0.1 }));
