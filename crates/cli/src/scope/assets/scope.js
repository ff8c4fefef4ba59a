// Flux scope: draws the live output that `flux play --scope` streams on /ws.
//
// Frames arrive as binary messages: four little-endian u32 (flags, channels, frames,
// sample rate), then interleaved f32 samples. Flag bit 0 marks lost frames before the
// message. Text messages are JSON: "hello" once, then "status" a few times a second.
// The last few seconds of each channel are kept in rings; every animation frame draws from
// them into a canvas that fades like a phosphor screen.
'use strict';

(() => {
  const MODES = ['yt', 'xy', 'xyz', 'spectrum'];
  const TDIVS = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1];
  const HISTORY = 1 << 18; // frames kept per channel (5.4 s at 48 kHz)
  const CHANNELS = 4;
  const GAP = 1;
  const COLORS = [[80, 255, 130], [70, 200, 255], [255, 185, 70], [255, 100, 200]];
  const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  // What the page shows: set from the URL hash and the controls.
  const settings = { mode: 'xy', tdiv: 2e-3, gain: 1, persist: 300 };

  // The rings: sample k of channel c is data[c][k % HISTORY]; written counts every frame.
  const ring = {
    data: Array.from({ length: CHANNELS }, () => new Float32Array(HISTORY)),
    gapAt: new Uint8Array(HISTORY),
    written: 0,
    channels: 0,
    streamed: 0,
    sampleRate: 48000,
    lastData: 0,
  };

  const $ = (id) => document.getElementById(id);
  const trace = $('trace');
  const grid = $('grid');
  const tctx = trace.getContext('2d', { alpha: false });
  const gctx = grid.getContext('2d');
  const errors = [];
  window.addEventListener('error', (e) => errors.push(String(e.message)));

  let status = null;
  let connected = false;
  let hold = false;
  let lastTime = 0;
  let drawnTo = 0; // X-Y and XYZ: frames drawn so far
  let triggered = false;
  let keep = 0; // fraction of the screen the last fade kept
  let view = { w: 0, h: 0, dpr: 1 };
  const rot = { yaw: 0.6, pitch: 0.35, dragging: false, x: 0, y: 0, idle: 0 };

  // ---- Settings and the URL hash ----

  // A mode by its name in the URL, or by its button's: `fft`, `Y-T`, `x-y`, `XYZ`.
  function modeNamed(name) {
    const m = String(name || '').toLowerCase().replace('-', '');
    if (MODES.includes(m)) return m;
    return m === 'fft' ? 'spectrum' : null;
  }

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const mode = modeNamed(p.get('mode'));
    if (mode) settings.mode = mode;
    const tdiv = parseFloat(p.get('tdiv'));
    if (tdiv > 0) settings.tdiv = closest(TDIVS, tdiv / 1000);
    const gain = parseFloat(p.get('gain'));
    if (gain > 0) settings.gain = Math.min(8, Math.max(0.125, gain));
    const persist = parseFloat(p.get('persist'));
    if (persist >= 0) settings.persist = Math.min(2000, persist);
  }

  function writeHash() {
    const p = new URLSearchParams({
      mode: settings.mode,
      tdiv: String(+(settings.tdiv * 1000).toPrecision(3)),
      gain: String(+settings.gain.toPrecision(4)),
      persist: String(settings.persist),
    });
    history.replaceState(null, '', '#' + p);
  }

  function closest(list, v) {
    return list.reduce((a, b) => (Math.abs(b - v) < Math.abs(a - v) ? b : a));
  }

  function formatTime(s) {
    return s >= 1e-3 ? `${+(s * 1e3).toPrecision(3)} ms` : `${+(s * 1e6).toPrecision(3)} µs`;
  }

  function setupControls() {
    const tdiv = $('tdiv');
    for (const t of TDIVS) {
      const o = document.createElement('option');
      o.value = String(t);
      o.textContent = formatTime(t);
      tdiv.append(o);
    }
    tdiv.addEventListener('change', () => { settings.tdiv = +tdiv.value; changed(); });
    $('gain').addEventListener('input', (e) => { settings.gain = 2 ** +e.target.value; changed(); });
    $('persist').addEventListener('input', (e) => { settings.persist = +e.target.value; changed(); });
    for (const b of document.querySelectorAll('#modes button')) {
      b.addEventListener('click', () => { settings.mode = b.dataset.mode; changed(); });
    }
    window.addEventListener('keydown', (e) => {
      if (e.target instanceof HTMLSelectElement || e.target instanceof HTMLInputElement) return;
      const n = '1234'.indexOf(e.key);
      if (n >= 0) { settings.mode = MODES[n]; changed(); }
      if (e.key === ' ') { hold = !hold; e.preventDefault(); showControls(); }
    });
    window.addEventListener('hashchange', () => { readHash(); changed(false); });
    const screen = $('screen');
    screen.addEventListener('pointerdown', (e) => {
      if (settings.mode !== 'xyz') return;
      Object.assign(rot, { dragging: true, x: e.clientX, y: e.clientY });
      screen.setPointerCapture(e.pointerId);
    });
    screen.addEventListener('pointermove', (e) => {
      if (!rot.dragging) return;
      rot.yaw += (e.clientX - rot.x) * 0.01;
      rot.pitch = Math.max(-1.5, Math.min(1.5, rot.pitch + (e.clientY - rot.y) * 0.01));
      Object.assign(rot, { x: e.clientX, y: e.clientY, idle: 0 });
    });
    screen.addEventListener('pointerup', () => { rot.dragging = false; });
    screen.addEventListener('pointercancel', () => { rot.dragging = false; });
  }

  function changed(toHash = true) {
    if (toHash) writeHash();
    clearTrace();
    drawnTo = ring.written;
    showControls();
  }

  function showControls() {
    for (const b of document.querySelectorAll('#modes button')) {
      b.classList.toggle('on', b.dataset.mode === settings.mode);
    }
    $('tdiv').value = String(settings.tdiv);
    $('tdiv').parentElement.classList.toggle('off', settings.mode !== 'yt');
    $('gain').value = String(Math.log2(settings.gain));
    $('gain-out').textContent = `×${+settings.gain.toPrecision(3)}`;
    $('persist').value = String(settings.persist);
    $('persist-out').textContent = settings.persist ? `${settings.persist} ms` : 'off';
    $('screen').classList.toggle('rotate', settings.mode === 'xyz');
  }

  // ---- The stream ----

  function connect() {
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { connected = true; };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') text(JSON.parse(e.data));
      else frames(e.data);
    };
    ws.onclose = () => {
      connected = false;
      showStatus();
      setTimeout(connect, 1000);
    };
  }

  function text(msg) {
    if (msg.type === 'hello') {
      ring.channels = msg.channels;
      ring.streamed = msg.streamed_channels;
      ring.sampleRate = msg.sample_rate;
      showStatus();
    } else if (msg.type === 'status') {
      status = msg;
      showStatus();
    }
  }

  function frames(buffer) {
    const head = new DataView(buffer, 0, 16);
    const flags = head.getUint32(0, true);
    const ch = head.getUint32(4, true);
    const n = head.getUint32(8, true);
    ring.sampleRate = head.getUint32(12, true);
    ring.streamed = ch;
    let samples;
    if (LITTLE_ENDIAN) {
      samples = new Float32Array(buffer, 16, n * ch);
    } else {
      const view = new DataView(buffer, 16);
      samples = Float32Array.from({ length: n * ch }, (_, i) => view.getFloat32(i * 4, true));
    }
    const start = ring.written;
    for (let c = 0; c < Math.min(ch, CHANNELS); c++) {
      const d = ring.data[c];
      for (let i = 0; i < n; i++) d[(start + i) % HISTORY] = samples[i * ch + c];
    }
    for (let i = 0; i < n; i++) ring.gapAt[(start + i) % HISTORY] = 0;
    if (flags & GAP && n > 0) ring.gapAt[start % HISTORY] = 1;
    ring.written += n;
    ring.lastData = performance.now();
  }

  function showStatus() {
    $('link').textContent = connected ? 'live' : 'disconnected, retrying';
    $('link').className = connected ? '' : 'bad';
    if (!status) return;
    $('file').textContent = status.file;
    $('output').textContent =
      `${status.output}, ${ring.sampleRate} Hz, ${ring.channels} ch${status.realtime ? ', rt' : ''}`;
    $('load').textContent =
      `${(status.dsp_load * 100).toFixed(1)}% (max ${(status.dsp_load_max * 100).toFixed(1)}%)`;
    $('underruns').textContent = String(status.underruns);
    $('underruns').className = status.underruns > 0 ? 'bad' : '';
    $('drops').textContent = `${status.scope_dropped_frames} frames`;
    $('tempo').textContent = `${status.bpm} bpm, ${status.bar_beat}`;
    const list = $('signals');
    list.replaceChildren(...status.signals.map((s) => {
      const li = document.createElement('li');
      const id = document.createElement('span');
      const tier = document.createElement('span');
      id.textContent = s.id;
      tier.textContent = s.tier;
      li.append(id, tier);
      return li;
    }));
    showLevels(status.levels);
    $('message').textContent = status.message;
    $('message').className = /: ok, /.test(status.message) ? '' : 'error';
  }

  // Meter bars: -60 to 0 dBFS; the bar is the RMS, the mark the peak (red at -1 dBFS or
  // over). Silence arrives as null.
  function showLevels(levels) {
    if (!levels) return;
    const pos = (db) => (db === null ? 0 : Math.min(100, Math.max(0, (db + 60) / 60 * 100)));
    const num = (db) => (db === null ? '-inf' : db.toFixed(1));
    const row = (name, l, extra) => {
      const label = document.createElement('span');
      label.className = 'name';
      label.textContent = name;
      label.title = name;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const rms = document.createElement('div');
      rms.className = 'rms';
      rms.style.width = `${pos(l.rms_dbfs)}%`;
      const peak = document.createElement('div');
      peak.className = l.peak_dbfs !== null && l.peak_dbfs >= -1 ? 'peak hot' : 'peak';
      peak.style.left = `calc(${pos(l.peak_dbfs)}% - 2px)`;
      bar.append(rms, peak);
      const value = document.createElement('span');
      value.className = 'value';
      const clips = l.clips > 0 ? `, ${l.clips} clips` : '';
      value.textContent = `${num(l.peak_dbfs)} / ${num(l.rms_dbfs)}${extra}${clips}`;
      return [label, bar, value];
    };
    const m = levels.master;
    const lufs = m.lufs_short === null ? '' : `, ${m.lufs_short.toFixed(1)} LUFS`;
    const rows = [row('master', m, lufs)];
    for (const [id, l] of Object.entries(levels.signals)) rows.push(row(id, l, ''));
    $('meters').replaceChildren(...rows.flat());
  }

  // ---- Geometry ----

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(trace.clientWidth * dpr));
    const h = Math.max(1, Math.round(trace.clientHeight * dpr));
    if (w === view.w && h === view.h && dpr === view.dpr) return false;
    view = { w, h, dpr };
    for (const c of [trace, grid]) { c.width = w; c.height = h; }
    clearTrace();
    return true;
  }

  function clearTrace() {
    tctx.globalCompositeOperation = 'source-over';
    tctx.fillStyle = '#000';
    tctx.fillRect(0, 0, view.w, view.h);
  }

  // The square of the X-Y and XYZ views, in canvas pixels.
  function square() {
    const side = Math.min(view.w, view.h) * 0.92;
    return { cx: view.w / 2, cy: view.h / 2, half: side / 2 };
  }

  // The Y-T and spectrum area: 10 by 8 divisions with a margin.
  function area() {
    const m = 30 * view.dpr;
    return { x: m, y: m * 0.6, w: view.w - 2 * m, h: view.h - 1.6 * m - 20 * view.dpr };
  }

  // X-Y: where the point (x, y) lands, in CSS pixels of the page.
  function project(x, y) {
    const s = square();
    const r = trace.getBoundingClientRect();
    return {
      x: r.left + (s.cx + x * settings.gain * s.half) / view.dpr,
      y: r.top + (s.cy - y * settings.gain * s.half) / view.dpr,
    };
  }

  // ---- Drawing ----

  // Fades the screen: the trace falls to a tenth in `persist` ms. Traces are then drawn
  // over it (source-over), so a figure drawn again and again glows at its own colour and
  // never burns to white.
  function fade(dt) {
    tctx.globalCompositeOperation = 'source-over';
    if (settings.persist <= 0) { clearTrace(); keep = 0; return; }
    keep = Math.pow(0.1, (dt * 1000) / settings.persist);
    tctx.fillStyle = `rgba(0,0,0,${1 - keep})`;
    tctx.fillRect(0, 0, view.w, view.h);
    // A multiplied fade stalls at a few levels above black (8-bit rounding); a slight
    // colour burn takes those last levels down to black and leaves bright ones alone.
    tctx.globalCompositeOperation = 'color-burn';
    tctx.fillStyle = 'rgb(250,250,250)';
    tctx.fillRect(0, 0, view.w, view.h);
    tctx.globalCompositeOperation = 'source-over';
  }

  // A beam: segments grouped by brightness, so a slow beam glows and a fast one is faint,
  // as on a tube. `points` is [x0, y0, x1, y1, ...], `bright` one value per point, `breaks`
  // true where the trace must not join the previous point.
  function beam(points, bright, breaks, color) {
    const LEVELS = 8;
    const paths = Array.from({ length: LEVELS }, () => new Path2D());
    for (let i = 1; i < points.length / 2; i++) {
      if (breaks[i]) continue;
      const x0 = points[2 * i - 2], y0 = points[2 * i - 1];
      const x1 = points[2 * i], y1 = points[2 * i + 1];
      const len = Math.hypot(x1 - x0, y1 - y0);
      const b = Math.min(1, (2.2 * view.dpr) / (len + 0.5)) * bright[i];
      const level = Math.min(LEVELS - 1, Math.floor(Math.max(0.12, b) * LEVELS));
      paths[level].moveTo(x0, y0);
      paths[level].lineTo(x1, y1);
    }
    tctx.lineWidth = 1.6 * view.dpr;
    tctx.lineCap = 'round';
    tctx.strokeStyle = `rgb(${color})`;
    for (let l = 0; l < LEVELS; l++) {
      tctx.globalAlpha = (l + 1) / LEVELS;
      tctx.stroke(paths[l]);
    }
    tctx.globalAlpha = 1;
  }

  // The new frames for X-Y and XYZ: at most a tenth of a second, older ones are skipped.
  function newFrames() {
    const to = ring.written;
    let from = Math.max(drawnTo - 1, to - Math.round(ring.sampleRate / 10), 0);
    if (to - from > HISTORY) from = to - HISTORY;
    drawnTo = to;
    return [from, to];
  }

  function drawXY() {
    const [from, to] = newFrames();
    const s = square();
    const n = to - from;
    const pts = new Float32Array(2 * n);
    const bright = new Float32Array(n).fill(1);
    const breaks = new Uint8Array(n);
    const [X, Y] = [ring.data[0], ring.data[ring.streamed > 1 ? 1 : 0]];
    const k = settings.gain * s.half;
    for (let i = 0; i < n; i++) {
      const f = (from + i) % HISTORY;
      pts[2 * i] = s.cx + X[f] * k;
      pts[2 * i + 1] = s.cy - (ring.streamed > 1 ? Y[f] : 0) * k;
      breaks[i] = ring.gapAt[f];
    }
    beam(pts, bright, breaks, COLORS[0]);
  }

  function rotate(x, y, z) {
    const [cy, sy, cp, sp] = [Math.cos(rot.yaw), Math.sin(rot.yaw), Math.cos(rot.pitch), Math.sin(rot.pitch)];
    const x1 = x * cy + z * sy;
    const z1 = -x * sy + z * cy;
    return [x1, y * cp - z1 * sp, y * sp + z1 * cp];
  }

  // Perspective: the camera looks at the origin from 4 units away.
  function perspective(p, s) {
    const d = 4 / (4 - p[2]);
    const k = s.half * 0.75;
    return [s.cx + p[0] * d * k, s.cy - p[1] * d * k];
  }

  function drawXYZ(dt) {
    if (!rot.dragging) {
      rot.idle += dt;
      // Slow auto-rotation, easing in a moment after a drag.
      rot.yaw += 0.25 * dt * Math.min(1, rot.idle / 2);
    }
    const [from, to] = newFrames();
    const s = square();
    const n = to - from;
    const g = settings.gain;
    const pts = new Float32Array(2 * n);
    const bright = new Float32Array(n);
    const breaks = new Uint8Array(n);
    const has = (c) => ring.streamed > c;
    for (let i = 0; i < n; i++) {
      const f = (from + i) % HISTORY;
      const p = rotate(ring.data[0][f] * g, has(1) ? ring.data[1][f] * g : 0,
        has(2) ? ring.data[2][f] * g : 0);
      const [x, y] = perspective(p, s);
      pts[2 * i] = x;
      pts[2 * i + 1] = y;
      // Nearer is brighter.
      bright[i] = Math.min(1, Math.max(0.3, 0.65 + 0.35 * p[2]));
      breaks[i] = ring.gapAt[f];
    }
    beam(pts, bright, breaks, COLORS[0]);
  }

  // Y-T: the latest rising zero crossing of channel 1 (with hysteresis) that leaves a whole
  // screen after it; `null` when there is none (the screen then runs free).
  function findTrigger(pre, post) {
    const d = ring.data[0];
    const end = ring.written - post; // the latest usable trigger
    const start = Math.max(ring.written - HISTORY + pre + 1, end - Math.round(ring.sampleRate / 5));
    if (end <= start + 1) return null;
    let peak = 0;
    for (let k = start; k < end; k++) peak = Math.max(peak, Math.abs(d[k % HISTORY]));
    if (peak < 1e-4) return null;
    const hyst = Math.max(1e-4, 0.05 * peak);
    let armed = false;
    let found = null;
    for (let k = start; k < end; k++) {
      const v = d[k % HISTORY];
      if (v < -hyst) armed = true;
      else if (armed && v >= 0 && ring.gapAt[k % HISTORY] === 0) {
        const u = d[(k - 1) % HISTORY];
        if (u < 0) {
          found = k - 1 + (-u / (v - u)); // where the line crosses zero
          armed = false;
        }
      }
    }
    return found;
  }

  function drawYT() {
    const a = area();
    const span = settings.tdiv * 10 * ring.sampleRate; // frames on screen
    const pre = span / 10; // one division before the trigger
    const t = findTrigger(Math.ceil(pre) + 1, Math.ceil(span - pre) + 1);
    triggered = t !== null;
    // The frame at the left edge; without a trigger, the latest screenful.
    const t0 = triggered ? t - pre : ring.written - span - 1;
    if (t0 < ring.written - HISTORY + 1 || t0 < 0) return;
    const pxPerFrame = a.w / span;
    const k = (settings.gain * a.h) / 2;
    const mid = a.y + a.h / 2;
    tctx.lineWidth = 1.5 * view.dpr;
    tctx.lineJoin = 'round';
    for (let c = 0; c < Math.min(ring.streamed, CHANNELS); c++) {
      const d = ring.data[c];
      const path = new Path2D();
      const first = Math.floor(t0);
      const last = Math.ceil(t0 + span);
      if (span > a.w * 2) {
        // More frames than pixels: each column shows the range of its frames.
        let k0 = first;
        for (let x = 0; x < Math.ceil(a.w); x++) {
          const k1 = Math.min(last, Math.floor(t0 + (x + 1) / pxPerFrame));
          let lo = Infinity, hi = -Infinity;
          for (let j = k0; j <= k1; j++) {
            const v = d[j % HISTORY];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
          k0 = k1;
          if (lo > hi) continue;
          path.moveTo(a.x + x + 0.5, mid - hi * k - 0.5);
          path.lineTo(a.x + x + 0.5, mid - lo * k + 0.5);
        }
      } else {
        for (let j = first; j <= last; j++) {
          const x = a.x + (j - t0) * pxPerFrame;
          const y = mid - d[j % HISTORY] * k;
          if (j === first || ring.gapAt[j % HISTORY]) path.moveTo(x, y);
          else path.lineTo(x, y);
        }
      }
      tctx.save();
      tctx.beginPath();
      tctx.rect(a.x, a.y, a.w, a.h);
      tctx.clip();
      tctx.strokeStyle = `rgba(${COLORS[c]},0.9)`;
      tctx.stroke(path);
      tctx.restore();
    }
  }

  // ---- Spectrum ----

  const fft = { n: 0, re: null, im: null, win: null, rev: null, cos: null, sin: null, db: null };

  function fftSetup(n) {
    fft.n = n;
    fft.re = new Float64Array(n);
    fft.im = new Float64Array(n);
    fft.win = Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    fft.rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      fft.rev[i] = r;
    }
    fft.cos = Float64Array.from({ length: n / 2 }, (_, i) => Math.cos((2 * Math.PI * i) / n));
    fft.sin = Float64Array.from({ length: n / 2 }, (_, i) => -Math.sin((2 * Math.PI * i) / n));
    fft.db = new Float64Array(n / 2 + 1).fill(-200);
  }

  // In-place radix-2 transform of fft.re / fft.im.
  function transform() {
    const { n, re, im, rev } = fft;
    for (let i = 0; i < n; i++) {
      const j = rev[i];
      if (j > i) {
        [re[i], re[j]] = [re[j], re[i]];
        [im[i], im[j]] = [im[j], im[i]];
      }
    }
    for (let size = 2; size <= n; size *= 2) {
      const half = size / 2;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = fft.cos[k * step], wi = fft.sin[k * step];
          const a = start + k, b = a + half;
          const tr = re[b] * wr - im[b] * wi;
          const ti = re[b] * wi + im[b] * wr;
          re[b] = re[a] - tr; im[b] = im[a] - ti;
          re[a] += tr; im[a] += ti;
        }
      }
    }
  }

  function spectrumRange() {
    return { lo: 20, hi: ring.sampleRate / 2, top: 0, bottom: -100 };
  }

  function drawSpectrum(dt) {
    let n = 1024;
    while (n < ring.sampleRate / 12) n *= 2; // 4096 at 48 kHz: bins of 11.7 Hz
    if (fft.n !== n) fftSetup(n);
    if (ring.written < n) return;
    const d = ring.data[0];
    const start = ring.written - n;
    for (let i = 0; i < n; i++) {
      fft.re[i] = d[(start + i) % HISTORY] * fft.win[i];
      fft.im[i] = 0;
    }
    transform();
    // 0 dB is a full-scale sine: a Hann window keeps a quarter of n * amplitude.
    const offset = 20 * Math.log10(settings.gain * 4 / n);
    for (let i = 0; i <= n / 2; i++) {
      const db = 10 * Math.log10(fft.re[i] ** 2 + fft.im[i] ** 2 + 1e-30) + offset;
      // Peaks fall at 60 dB/s, so the view is calm but quick to rise.
      fft.db[i] = Math.max(db, fft.db[i] - 60 * dt);
    }
    const a = area();
    const r = spectrumRange();
    const binHz = ring.sampleRate / n;
    const logLo = Math.log(r.lo), logSpan = Math.log(r.hi) - logLo;
    const yOf = (db) => a.y + ((r.top - Math.max(r.bottom, Math.min(r.top, db))) / (r.top - r.bottom)) * a.h;
    const line = new Path2D();
    const fill = new Path2D();
    fill.moveTo(a.x, a.y + a.h);
    const cols = Math.ceil(a.w);
    for (let x = 0; x <= cols; x++) {
      const f0 = Math.exp(logLo + (x / cols) * logSpan) / binHz;
      const f1 = Math.exp(logLo + ((x + 1) / cols) * logSpan) / binHz;
      let db;
      if (Math.floor(f1) > Math.floor(f0) + 1) {
        db = -Infinity; // several bins in this column: the loudest
        for (let b = Math.ceil(f0); b <= Math.min(n / 2, Math.floor(f1)); b++) db = Math.max(db, fft.db[b]);
      } else {
        const b = Math.min(n / 2 - 1, Math.floor(f0)); // between two bins: interpolate
        db = fft.db[b] + (fft.db[b + 1] - fft.db[b]) * (f0 - b);
      }
      const y = yOf(db);
      if (x === 0) line.moveTo(a.x, y); else line.lineTo(a.x + x, y);
      fill.lineTo(a.x + x, y);
    }
    fill.lineTo(a.x + cols, a.y + a.h);
    fill.closePath();
    // The fill settles at a fifth of the colour, whatever the persistence.
    tctx.fillStyle = `rgba(${COLORS[0]},${Math.max(0.02, 0.2 * (1 - keep))})`;
    tctx.fill(fill);
    tctx.lineWidth = 1.5 * view.dpr;
    tctx.strokeStyle = `rgba(${COLORS[0]},0.9)`;
    tctx.stroke(line);
  }

  // ---- Graticule ----

  function label(text, x, y, align = 'left') {
    gctx.textAlign = align;
    gctx.fillText(text, x, y);
  }

  function drawGrid() {
    const dpr = view.dpr;
    gctx.clearRect(0, 0, view.w, view.h);
    gctx.lineWidth = 1;
    gctx.font = `${11 * dpr}px ui-monospace, "DejaVu Sans Mono", monospace`;
    gctx.fillStyle = 'rgba(160,190,170,0.75)';
    const minor = 'rgba(120,150,130,0.22)';
    const major = 'rgba(120,150,130,0.45)';
    const lineAt = (x0, y0, x1, y1, style) => {
      gctx.strokeStyle = style;
      gctx.beginPath();
      gctx.moveTo(Math.round(x0) + 0.5, Math.round(y0) + 0.5);
      gctx.lineTo(Math.round(x1) + 0.5, Math.round(y1) + 0.5);
      gctx.stroke();
    };
    const mode = settings.mode;
    if (mode === 'yt') {
      const a = area();
      for (let i = 0; i <= 10; i++) lineAt(a.x + (a.w * i) / 10, a.y, a.x + (a.w * i) / 10, a.y + a.h, i === 5 ? major : minor);
      for (let i = 0; i <= 8; i++) lineAt(a.x, a.y + (a.h * i) / 8, a.x + a.w, a.y + (a.h * i) / 8, i === 4 ? major : minor);
      // The trigger: one division in, at zero.
      gctx.fillStyle = 'rgba(255,207,106,0.9)';
      label('T', a.x + a.w / 10, a.y - 4 * dpr, 'center');
      gctx.fillStyle = 'rgba(160,190,170,0.75)';
    } else if (mode === 'xy') {
      const s = square();
      for (let i = 0; i <= 8; i++) {
        const p = -s.half + (2 * s.half * i) / 8;
        const style = i === 4 ? major : minor;
        lineAt(s.cx + p, s.cy - s.half, s.cx + p, s.cy + s.half, style);
        lineAt(s.cx - s.half, s.cy + p, s.cx + s.half, s.cy + p, style);
      }
      label('ch1 →', s.cx + s.half - 4 * dpr, s.cy - 4 * dpr, 'right');
      label('↑ ch2', s.cx + 4 * dpr, s.cy - s.half + 12 * dpr);
    } else if (mode === 'xyz') {
      const s = square();
      const g = 1;
      const corners = [];
      for (const x of [-g, g]) for (const y of [-g, g]) for (const z of [-g, g]) corners.push(perspective(rotate(x, y, z), s));
      for (let i = 0; i < 8; i++) {
        for (const bit of [1, 2, 4]) {
          const j = i | bit;
          if (j !== i) lineAt(corners[i][0], corners[i][1], corners[j][0], corners[j][1], minor);
        }
      }
      const axes = [['x', [1.25, 0, 0]], ['y', [0, 1.25, 0]], ['z', [0, 0, 1.25]]];
      const o = perspective(rotate(0, 0, 0), s);
      for (const [name, v] of axes) {
        const p = perspective(rotate(...v), s);
        lineAt(o[0], o[1], p[0], p[1], major);
        label(name, p[0] + 3 * dpr, p[1] - 3 * dpr);
      }
    } else {
      const a = area();
      const r = spectrumRange();
      const xOf = (f) => a.x + (Math.log(f / r.lo) / Math.log(r.hi / r.lo)) * a.w;
      for (const f of [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]) {
        if (f > r.hi) break;
        const x = xOf(f);
        lineAt(x, a.y, x, a.y + a.h, f === 1000 ? major : minor);
        label(f >= 1000 ? `${f / 1000}k` : String(f), x, a.y + a.h + 14 * dpr, 'center');
      }
      for (let db = r.top; db >= r.bottom; db -= 20) {
        const y = a.y + ((r.top - db) / (r.top - r.bottom)) * a.h;
        lineAt(a.x, y, a.x + a.w, y, db === r.top ? major : minor);
        label(`${db}`, a.x - 4 * dpr, y + 4 * dpr, 'right');
      }
    }
  }

  function readout() {
    const m = settings.mode;
    const g = `×${+settings.gain.toPrecision(3)}`;
    let text;
    if (m === 'yt') {
      text = `${formatTime(settings.tdiv)}/div  ${+(0.25 / settings.gain).toPrecision(3)}/div  ` +
        `trig ch1 ↑0 ${triggered ? '' : '(auto)'}`;
    } else if (m === 'xy') text = `X ch1, Y ch2  ${+(0.25 / settings.gain).toPrecision(3)}/div`;
    else if (m === 'xyz') text = `X ch1, Y ch2, Z ch3  gain ${g}  drag to rotate`;
    else text = `ch1  ${fft.n}-point FFT, Hann  dB re full scale  gain ${g}`;
    $('readout').textContent = text + (hold ? '  HOLD' : '');
    let notice = '';
    if (!connected) notice = 'not connected: is flux play --scope running?';
    else if (performance.now() - ring.lastData > 1000) notice = 'no frames arriving';
    else if (m === 'xy' && ring.streamed < 2) notice = 'one channel only: Y is 0 (play with --channels 2)';
    else if (m === 'xyz' && ring.streamed < 3) notice = `${ring.streamed} channels: Z is 0 (play with --channels 3)`;
    $('notice').textContent = notice;
  }

  function frame(now) {
    const dt = Math.min(0.1, lastTime ? (now - lastTime) / 1000 : 0);
    lastTime = now;
    resize();
    if (!hold) {
      fade(dt);
      if (ring.written > 0) {
        if (settings.mode === 'xy') drawXY();
        else if (settings.mode === 'xyz') drawXYZ(dt);
        else if (settings.mode === 'yt') drawYT();
        else drawSpectrum(dt);
      }
      drawGrid();
    }
    readout();
    requestAnimationFrame(frame);
  }

  // For tests and the curious: the state, and where X-Y puts a point.
  window.fluxScope = {
    settings,
    errors,
    project,
    frames: () => ring.written,
    status: () => status,
  };

  readHash();
  setupControls();
  showControls();
  resize();
  connect();
  requestAnimationFrame(frame);
})();
