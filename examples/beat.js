// A beat on the transport's clock: a kick on every beat, a hat on the offbeats, a
// Euclidean rim. Every part reads the same clock, to the frame: change one and save, or
// add one live, and it stays on the grid (`--quantize bar` makes changes land on the bar).
tempo(124);

flux('kick', (mem, idx) => {
  const beat = every(1);
  return { update: (sr) => {
    if (beat()) mem[idx] = 1;
    mem[idx] *= 0.9993;
    const env = mem[idx];
    mem[idx + 1] = (mem[idx + 1] + (45 + 160 * env * env * env) / sr) % 1;
    return Math.sin(2 * Math.PI * mem[idx + 1]) * env * 0.6;
  } };
});

flux('hat', (mem, idx) => {
  const half = every(0.5);
  const offbeat = seq([0, 1], 0.5);
  return { update: () => {
    if (half() * offbeat()) mem[idx] = 1;
    mem[idx] *= 0.997;
    return (Math.random() * 2 - 1) * mem[idx] * 0.15;
  } };
});

flux('rim', (mem, idx) => {
  const rim = euclid(3, 8, 0.25, 2);
  return { update: (sr) => {
    if (rim()) mem[idx] = 1;
    mem[idx] *= 0.998;
    mem[idx + 1] = (mem[idx + 1] + 1700 / sr) % 1;
    return Math.sin(2 * Math.PI * mem[idx + 1]) * mem[idx] * 0.2;
  } };
});
