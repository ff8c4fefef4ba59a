// expect: ok 0
gain(1e300);
