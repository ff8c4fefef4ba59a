// expect: error 4:* Error: after the write
// today: sound-changed FIXME a failed load's writes to FLUX_STATE reach the playing signals (issue 10 item 5)
FLUX_STATE.fill(NaN);
throw new Error('after the write');
