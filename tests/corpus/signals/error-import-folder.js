// expect: error 2:15 import './lib' refused: it is a folder
import z from './lib';
