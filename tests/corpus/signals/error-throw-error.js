// expect: error 2:* Error: boom
flux('t', () => { throw new Error('boom'); });
