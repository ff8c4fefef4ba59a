// expect: ok 1
function* steps() { let i = 0; while (true) yield (i++ % 2) * 0.1; }
const it = steps();
flux('gen', () => ({ update: () => it.next().value }));
