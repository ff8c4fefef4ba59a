// expect: error 2:30 import 'fs' refused: only relative paths
import { readFileSync } from 'fs';
