// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./CommitteeQuorum.sol";

/// @title weft L1 inbox
/// @notice Receives the committee's ordered batches and anyone's forced transactions.
/// Only the committee writes here: a batch is accepted only with the finality certificate of
/// the sub-DAG whose attestation names it (quorum stake of the committee fixed at deployment
/// signed an attestation naming this batch's sequence number and data hash). Whoever sends the
/// transaction is only a courier; a batch the committee did not order is refused.
/// Batches carry contiguous sequence numbers, so a second poster racing the first (or a
/// poster replaying after a crash) is rejected rather than duplicating data on L1.
/// Every accepted batch extends a hash chain, so a reader can check that it saw every batch.
contract Inbox is CommitteeQuorum {
    /// `got` is not the next sequence number (a duplicate when lower, a gap when higher).
    error WrongSequence(uint64 expected, uint64 got);
    /// A calldata batch with no bytes, or a blob batch sent without blobs.
    error EmptyBatch();
    /// A forced transaction larger than `MAX_FORCED_TX_BYTES`.
    error ForcedTxTooLarge(uint256 size, uint256 max);
    /// A forced transaction with no bytes: no worker can order one, so it would stay pending.
    error EmptyForcedTx();
    /// The attestation does not name batch `sequence` among its batches.
    error NotAttested(uint64 sequence);
    /// The posted data's hash is not the one the committee attested for this sequence.
    error DataMismatch(bytes32 posted, bytes32 attested);

    /// A sub-DAG's attestation as `weft_attest::Attestation::digest` hashes it; `chainsRoot`
    /// is given as the root itself, and `batches` are the data hashes of the batches it
    /// names, from sequence `firstBatch` on.
    struct Attested {
        uint64 index;
        uint64 leaderRound;
        uint64 timestamp;
        uint64 txCount;
        bytes32 txRoot;
        bytes32 chainsRoot;
        bytes32 previous;
        uint64 firstBatch;
        bytes32[] batches;
    }

    /// `commitment = keccak256(previous commitment ‖ dataHash)`; `dataHash` is keccak256 of the
    /// calldata, or of the concatenated versioned hashes of the blobs.
    event BatchPosted(
        uint64 indexed sequence, bytes32 commitment, bytes32 dataHash, address poster, bool blob
    );
    event ForceIncluded(uint64 indexed index, address indexed sender, bytes transaction);

    bytes32 public constant ATTESTATION_DOMAIN = keccak256("weft.attestation.v1");
    /// Bounds what a forced transaction can make every node store and order.
    uint256 public constant MAX_FORCED_TX_BYTES = 131072;

    uint64 public nextSequence;
    bytes32 public lastCommitment;
    uint64 public forcedCount;
    mapping(uint64 => bytes32) public commitments;

    constructor(uint64 epoch, address[] memory signers_, uint64[] memory stakes_)
        CommitteeQuorum(epoch, signers_, stakes_)
    {}

    /// The chain head in one call, so a reader sees both at the same block.
    function head() external view returns (uint64 sequence, bytes32 commitment) {
        return (nextSequence, lastCommitment);
    }

    /// Posts batch `sequence` as calldata, with the certificate of the sub-DAG that names it
    /// (`signatures` as `checkQuorum` reads them).
    function submitBatch(
        uint64 sequence,
        bytes calldata data,
        Attested calldata attested,
        bytes calldata signatures
    ) external {
        if (data.length == 0) revert EmptyBatch();
        _record(sequence, keccak256(data), false, attested, signatures);
    }

    /// Posts batch `sequence` whose contents are the blobs carried by this transaction.
    function submitBlobBatch(uint64 sequence, Attested calldata attested, bytes calldata signatures)
        external
    {
        bytes memory hashes;
        for (uint256 i = 0; ; i++) {
            bytes32 h = blobhash(i);
            if (h == bytes32(0)) break;
            hashes = bytes.concat(hashes, h);
        }
        if (hashes.length == 0) revert EmptyBatch();
        _record(sequence, keccak256(hashes), true, attested, signatures);
    }

    /// Anyone may force a transaction into the ordered stream; sequencers must include it
    /// within the bound they advertise.
    function forceInclude(bytes calldata transaction) external {
        if (transaction.length == 0) revert EmptyForcedTx();
        if (transaction.length > MAX_FORCED_TX_BYTES) {
            revert ForcedTxTooLarge(transaction.length, MAX_FORCED_TX_BYTES);
        }
        uint64 index = forcedCount;
        forcedCount = index + 1;
        emit ForceIncluded(index, msg.sender, transaction);
    }

    /// The digest the committee signs for `attested` (see `weft_attest::Attestation::digest`).
    function attestationDigest(Attested calldata attested) public view returns (bytes32) {
        bytes32 batchesRoot = attested.batches.length == 0
            ? bytes32(0)
            : keccak256(abi.encodePacked(uint256(attested.firstBatch), attested.batches));
        return keccak256(
            bytes.concat(
                abi.encode(
                    ATTESTATION_DOMAIN,
                    committeeId,
                    attested.index,
                    attested.leaderRound,
                    attested.timestamp
                ),
                abi.encode(
                    attested.txCount,
                    attested.txRoot,
                    attested.chainsRoot,
                    attested.previous,
                    batchesRoot
                )
            )
        );
    }

    function _record(
        uint64 sequence,
        bytes32 dataHash,
        bool blob,
        Attested calldata attested,
        bytes calldata signatures
    ) private {
        if (sequence != nextSequence) revert WrongSequence(nextSequence, sequence);
        if (sequence < attested.firstBatch || sequence - attested.firstBatch >= attested.batches.length) {
            revert NotAttested(sequence);
        }
        bytes32 expected = attested.batches[sequence - attested.firstBatch];
        if (expected != dataHash) revert DataMismatch(dataHash, expected);
        checkQuorum(attestationDigest(attested), signatures);
        bytes32 commitment = keccak256(abi.encodePacked(lastCommitment, dataHash));
        lastCommitment = commitment;
        commitments[sequence] = commitment;
        nextSequence = sequence + 1;
        emit BatchPosted(sequence, commitment, dataHash, msg.sender, blob);
    }
}
