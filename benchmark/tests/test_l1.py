"""The L1 part of a run (`benchmark/l1.py`) on hand-written inputs: the /metrics parser, the
verifier's report, the L1 lag and the posters' totals, and their summary lines. Run by
`cargo test -p weft-benchmark` (tests/parser.rs) with python3 -m unittest."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmark.l1 import (lag_stats, parse_metrics, parse_verify,  # noqa: E402
                          poster_totals)
from benchmark.logs import l1_summary  # noqa: E402

METRICS = '''# HELP weft_node_committed_log_index Sub-DAGs written to the committed log
# TYPE weft_node_committed_log_index gauge
weft_node_committed_log_index 73
weft_node_transactions_committed_total 5000
weft_l1_confirmed_next_sub_dag 61
weft_l1_bytes_posted_total 3617
weft_l1_gas_used_total 3.18e5
weft_l1_rejections_total{reason="not_poster"} 0
weft_l1_rejections_total{reason="sequence"} 2
weft_node_commit_latency_seconds_bucket{le="0.05"} 0
'''

VERIFY = '''L1 block:      17
batches:       11
transactions:  5000
sub-DAGs:      68
next position: sub-DAG 68 tx 0
attested:      11 batches by a quorum of the committee
consistent:    yes (hash chain and positions check out)
'''


class L1Test(unittest.TestCase):
    def test_metrics_are_read_and_label_sets_summed(self):
        m = parse_metrics(METRICS)
        self.assertEqual(m['weft_node_committed_log_index'], 73)
        self.assertEqual(m['weft_l1_gas_used_total'], 318000)
        self.assertEqual(m['weft_l1_rejections_total'], 2)
        self.assertNotIn('weft_l1_batches_posted_total', m)

    def test_the_verifier_report_gives_counts_and_verdict(self):
        v = parse_verify(VERIFY)
        self.assertEqual((v['l1_block'], v['batches'], v['transactions'], v['sub_dags'],
                          v['attested']), (17, 11, 5000, 68, 11))
        self.assertIs(v['consistent'], True)
        bad = parse_verify('batches:       3\ntransactions:  10\n'
                           'INCONSISTENT at batch 2: parent hash differs')
        self.assertIs(bad['consistent'], False)
        self.assertIn('batch 2', bad['inconsistency'])
        self.assertIsNone(parse_verify('Error: connection refused')['consistent'])

    def test_lag_is_committed_minus_confirmed_within_the_load_window(self):
        # (time, committed index, first sub-DAG not confirmed on L1). Sub-DAG 0 was committed
        # between 0 s (none) and 1 s (4): at 0.25 s, interpolated; sub-DAG 4 between 1 s and
        # 2 s (8): at 1.25 s. They are the first not on L1 at 1 and 2 s, and at 3 s.
        samples = [(0.0, 0, 0), (1.0, 4, 0), (2.0, 8, 0), (3.0, 12, 4), (4.0, 16, 16),
                   (9.0, 40, 16)]
        lag = lag_stats(samples, start=1.0, end=4.0)
        self.assertEqual(lag['count'], 4)
        self.assertEqual((lag['max'], lag['last'], lag['p50']), (8, 0, 4))
        self.assertAlmostEqual(lag['mean'], (4 + 8 + 8 + 0) / 4)
        self.assertAlmostEqual(lag['seconds']['max'], 1.75)
        self.assertAlmostEqual(lag['seconds']['mean'], (0.75 + 1.75 + 1.75 + 0) / 4)
        self.assertEqual(lag_stats([], None, None)['count'], 0)

    def test_posters_are_summed_over_authorities(self):
        one = {'weft_l1_batches_posted_total': 3, 'weft_l1_transactions_posted_total': 1000,
               'weft_l1_bytes_posted_total': 3000, 'weft_l1_gas_used_total': 250_000}
        two = {'weft_l1_batches_posted_total': 1, 'weft_l1_transactions_posted_total': 1000,
               'weft_l1_bytes_posted_total': 1000, 'weft_l1_gas_used_total': 150_000,
               'weft_l1_rejections_total': 1}
        t = poster_totals([one, two, {}])
        self.assertEqual((t['batches'], t['transactions'], t['rejections']), (4, 2000, 1))
        self.assertAlmostEqual(t['bytes_per_tx'], 2.0)
        self.assertAlmostEqual(t['gas_per_tx'], 200.0)
        self.assertEqual(poster_totals([{}])['gas_per_tx'], 0.0)

    def test_summary_lines(self):
        l1 = {'block_time': 1, 'takeover_blocks': 10, 'drain_seconds': 6.6,
              'committed_transactions': 5000,
              'lag': lag_stats([(1.0, 4, 0), (2.0, 8, 4)]),
              'posters': poster_totals([{'weft_l1_batches_posted_total': 11,
                                         'weft_l1_transactions_posted_total': 5000,
                                         'weft_l1_bytes_posted_total': 14470,
                                         'weft_l1_gas_used_total': 1273258}]),
              'verify': dict(parse_verify(VERIFY), exit=0)}
        text = '\n'.join(l1_summary({'l1': True}, {'l1': l1}))
        self.assertIn("L1 lag: 4.0 sub-DAGs mean (p50 4, max 4, 4 at the load's end)", text)
        self.assertIn('L1 cost: 2.9 B and 255 gas per transaction', text)
        self.assertIn('L1 verify: 11 batches, 5,000 transactions (of 5,000 committed), '
                      '11 attested, consistent: yes', text)
        self.assertIn('11 batches posted', text)
        self.assertNotIn('not on L1', text)
        l1['committed_transactions'] = 7000
        self.assertIn('L1: 2,000 committed transactions not on L1 after the 7 s drain',
                      '\n'.join(l1_summary({}, {'l1': l1})))
        l1['verify'] = dict(parse_verify('Error: no inbox'), exit=1, error='Error: no inbox')
        self.assertIn('verifier failed (exit 1)', '\n'.join(l1_summary({}, {'l1': l1})))
        self.assertEqual(l1_summary({'l1': False}, {}), [' L1: off'])
        self.assertEqual(l1_summary({}, {}), [])


if __name__ == '__main__':
    unittest.main()
