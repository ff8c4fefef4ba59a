// expect: error * ran longer than
while (true) {}
