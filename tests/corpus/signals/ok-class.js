// expect: ok 1
class Osc {
  constructor(f) { this.f = f; }
  level() { return 0.1; }
  get twice() { return this.level() * 2; }
}
const o = new Osc(220);
flux('cls', () => ({ update: () => o.twice }));
