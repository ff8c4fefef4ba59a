// expect: error * ran longer than
flux('fl', () => { for (;;) {} });
