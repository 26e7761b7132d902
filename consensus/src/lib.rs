//! Bullshark over the certified DAG, as a pure state machine (issue #4). Empty until then.
