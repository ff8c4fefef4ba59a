// Placeholder until the unit library lands.
function phasor() {
  const s = slots(1);
  return (freq) => {
    const p = mem[s];
    mem[s] = (p + freq / SR) % 1;
    return p;
  };
}

function sine() {
  const s = slots(1);
  return (freq) => {
    const p = mem[s];
    mem[s] = (p + freq / SR) % 1;
    return Math.sin(2 * Math.PI * p);
  };
}

function mtof(note) {
  return 440 * Math.pow(2, (note - 69) / 12);
}

const LIBRARY = { phasor, sine, mtof };
