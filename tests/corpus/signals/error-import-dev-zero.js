// expect: error 2:15 import '/dev/zero' refused
import z from '/dev/zero';
