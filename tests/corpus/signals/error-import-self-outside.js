// expect: error 2:15 refused:
import z from '../signals/../../corpus/../../Cargo.toml';
