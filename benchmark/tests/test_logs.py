"""The log parser on hand-written logs: Narwhal's metric definitions and the exactly-once check.
Run by `cargo test -p weft-benchmark` (tests/parser.rs) with python3 -m unittest."""

import importlib.util
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmark.logs import LogParser, percentile, summary, timestamp  # noqa: E402

T0 = '2026-11-23T10:00:0'


def line(second, msg, target='weft::bench'):
    return f'{T0}{second}Z  INFO {target}: {msg}'


def client(*samples, start='0.000000'):
    return '\n'.join([line(start, 'Start sending transactions size 100 rate 10')] +
                     [line(t, f'Sending sample transaction {i}') for i, t in samples])


def node(sealed=(), samples=(), commits=()):
    out = [line(t, f'Batch {d} contains {b} B') for d, b, t in sealed]
    out += [line(t, f'Batch {d} contains sample tx {i}') for d, i, t in samples]
    out += [line(t, f'Committed batch {d}') for d, t in commits]
    out += [line(t, f'Committed sub-dag {k} leader round {2 * k + 2} certificates 4 '
                    f'batches 1 transactions 10') for k, (_, t) in enumerate(commits)]
    return '\n'.join(out)


class ParserTest(unittest.TestCase):
    def test_timestamps_keep_microseconds(self):
        self.assertAlmostEqual(timestamp('1970-01-01T00:00:01.250000Z'), 1.25)
        self.assertEqual(timestamp('1970-01-01T00:01:00Z'), 60.0)

    def test_metrics_follow_narwhal_definitions(self):
        # Batch aa sealed at 1 s, committed at 2 s (and 3 s by the second node); 1000 B of
        # 100 B transactions. Sample 7 sent at 0.5 s sits in aa.
        n0 = node([('aa', 1000, '1.000000')], [('aa', 7, '1.000000')], [('aa', '2.000000')])
        n1 = node([], [], [('aa', '3.000000')])
        r = LogParser([client((7, '0.500000'))], [n0, n1], 100).results()
        self.assertAlmostEqual(r['consensus_latency']['mean'], 1.0)  # earliest commit
        self.assertAlmostEqual(r['end_to_end_latency']['mean'], 1.5)
        self.assertAlmostEqual(r['consensus_tps'], 10.0)  # 10 txs over sealed -> last commit
        self.assertAlmostEqual(r['end_to_end_tps'], 5.0)  # 10 txs over client start -> commit
        self.assertEqual((r['samples_sent'], r['samples_missing'], r['samples_duplicated']),
                         (1, 0, 0))
        self.assertIn('End-to-end TPS: 5 tx/s', summary(
            {'mode': 'local', 'faults': 0, 'nodes': 2, 'workers': 1, 'rate': 10,
             'tx_size': 100, 'duration': 1, 'parameters': {}}, r))

    def test_preconfirmation_latency_is_to_the_certificate_at_the_sealing_node(self):
        # Sample 7 sent at 0.5 s, sealed by node 0 in bb, which node 0 commits in sub-DAG 1;
        # node 0 has sub-DAG 1's certificate at 2.3 s, node 1 (not the client's) at 2.1 s.
        def sub_dag(k, t):
            return line(t, f'Committed sub-dag {k} leader round {2 * k + 2} certificates 4 '
                           f'batches 1 transactions 10')
        n0 = '\n'.join([
            line('1.000000', 'Batch aa contains 1000 B'),
            line('1.000000', 'Batch bb contains 1000 B'),
            line('1.000000', 'Batch bb contains sample tx 7'),
            line('1.500000', 'Committed batch aa'), sub_dag(0, '1.500000'),
            line('2.000000', 'Committed batch bb'), sub_dag(1, '2.000000'),
            line('2.100000', 'Certified sub-dag 0'), line('2.300000', 'Certified sub-dag 1'),
        ])
        n1 = '\n'.join([line('2.100000', 'Certified sub-dag 1')])
        r = LogParser([client((7, '0.500000'))], [n0, n1], 100).results()
        self.assertAlmostEqual(r['preconf_latency']['mean'], 1.8)
        self.assertEqual(r['preconf_latency']['count'], 1)
        text = summary({'mode': 'local', 'faults': 0, 'nodes': 2, 'workers': 1, 'rate': 10,
                        'tx_size': 100, 'duration': 1, 'parameters': {}}, r)
        self.assertIn('Pre-confirmation latency: 1,800 ms', text)

    def test_a_sample_one_node_never_committed_is_missing(self):
        n0 = node([('aa', 100, '1.000000')], [('aa', 1, '1.000000')], [('aa', '2.000000')])
        n1 = node()
        r = LogParser([client((1, '0.500000'))], [n0, n1], 100).results()
        self.assertEqual(r['samples_missing'], 1)
        self.assertEqual(r['missing_examples'], [1])

    def test_a_sample_committed_twice_or_in_two_batches_is_duplicated(self):
        twice = node([('aa', 100, '1.000000')], [('aa', 1, '1.000000')],
                     [('aa', '2.000000'), ('aa', '3.000000')])
        r = LogParser([client((1, '0.500000'))], [twice], 100).results()
        self.assertEqual(r['samples_duplicated'], 1)
        two_batches = node([('aa', 100, '1.000000'), ('bb', 100, '1.000000')],
                           [('aa', 1, '1.000000'), ('bb', 1, '1.000000')],
                           [('aa', '2.000000'), ('bb', '2.000000')])
        r = LogParser([client((1, '0.500000'))], [two_batches], 100).results()
        self.assertEqual(r['samples_duplicated'], 1)

    def test_rpc_samples_are_timed_by_the_clients_own_commit_lines(self):
        # The workers cannot tell rpc samples: sample 7's commit is the client's line, 8 was
        # refused (so nothing was promised about it), 9 was never seen committed.
        rpc = '\n'.join([
            client((7, '0.500000'), (8, '0.500000'), (9, '0.600000')),
            line('1.700000', 'Sample transaction 7 committed in sub-dag 3'),
            line('0.900000', 'Sample transaction 8 refused: the worker is full'),
            line('8.000000', 'Acknowledgement latency histogram ms 100:3,300:1'),
            line('8.000000', 'Client done: sent 5 transactions, 0 bursts late, 4 acknowledged, '
                             '1 refused, 0 wrong hashes, acknowledgement latency p50 100 ms '
                             'p99 300 ms'),
        ])
        n0 = node([('aa', 1000, '1.000000')], [], [('aa', '1.500000')])
        r = LogParser([rpc], [n0], 100).results()
        self.assertAlmostEqual(r['end_to_end_latency']['mean'], 1.2)
        self.assertEqual((r['samples_sent'], r['samples_missing'], r['missing_examples']),
                         (2, 1, [9]))
        a = r['acknowledgements']
        self.assertEqual((a['sent'], a['acknowledged'], a['refused']), (5, 4, 1))
        self.assertAlmostEqual(a['latency']['mean'], 0.15)
        self.assertEqual((a['latency']['p50'], a['latency']['p99']), (0.1, 0.3))
        text = summary({'mode': 'local', 'faults': 0, 'nodes': 1, 'workers': 1, 'rate': 10,
                        'tx_size': 100, 'duration': 1, 'parameters': {}}, r)
        self.assertIn('acknowledgement latency 150 ms (p50 100 ms, p99 300 ms)', text)
        self.assertIsNone(LogParser([client()], [n0], 100).results()['acknowledgements'])

    def test_commit_gap_and_percentiles(self):
        n0 = node([('aa', 100, '1.000000'), ('bb', 100, '1.000000')], [],
                  [('aa', '2.000000'), ('bb', '5.000000')])
        r = LogParser([client()], [n0], 100).results()
        self.assertAlmostEqual(r['commit_gap_max'], 3.0)
        self.assertEqual(percentile(list(range(1, 101)), 99), 99)
        self.assertEqual(percentile([3, 1, 2], 50), 2)


@unittest.skipUnless(importlib.util.find_spec('matplotlib'), 'matplotlib is not installed')
class PlotTest(unittest.TestCase):
    def test_figures_are_written_from_the_results_file(self):
        from benchmark.plot import plot
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, 'results.jsonl'), 'w') as f:
                for nodes, workers, faults, rate in [(4, 1, 0, 1000), (4, 1, 0, 2000),
                                                     (4, 2, 0, 1000), (4, 1, 1, 1000)]:
                    config = {'mode': 'local', 'nodes': nodes, 'workers': workers,
                              'faults': faults, 'rate': rate}
                    results = {'end_to_end_tps': rate * 0.9,
                               'end_to_end_latency': {'mean': 0.3}}
                    f.write(json.dumps({'config': config, 'results': results}) + '\n')
            written = plot(os.path.join(d, 'results.jsonl'), d)
            self.assertEqual(sorted(os.path.basename(p) for p in written),
                             ['latency-faults.png', 'latency-throughput.png',
                              'throughput-workers.png'])
            for p in written:
                self.assertGreater(os.path.getsize(p), 1000)


if __name__ == '__main__':
    unittest.main()
