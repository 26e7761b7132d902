//! Load client and log parser of the benchmark harness (issue #5). Empty until then.
