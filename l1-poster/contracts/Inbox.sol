// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title weft L1 inbox
/// @notice Receives the sequencer's ordered batches and anyone's forced transactions.
/// Batches carry contiguous sequence numbers, so a second poster racing the first (or a
/// poster replaying after a crash) is rejected here rather than duplicating data on L1.
/// Every accepted batch extends a hash chain, so a reader can check that it saw every batch.
contract Inbox {
    /// The sender is not one of the posters fixed at deployment.
    error NotPoster(address sender);
    /// `got` is not the next sequence number (a duplicate when lower, a gap when higher).
    error WrongSequence(uint64 expected, uint64 got);
    /// A calldata batch with no bytes, or a blob batch sent without blobs.
    error EmptyBatch();
    /// A forced transaction larger than `MAX_FORCED_TX_BYTES`.
    error ForcedTxTooLarge(uint256 size, uint256 max);

    /// `commitment = keccak256(previous commitment ‖ dataHash)`; `dataHash` is keccak256 of the
    /// calldata, or of the concatenated versioned hashes of the blobs.
    event BatchPosted(
        uint64 indexed sequence, bytes32 commitment, bytes32 dataHash, address poster, bool blob
    );
    event ForceIncluded(uint64 indexed index, address indexed sender, bytes transaction);

    /// Bounds what a forced transaction can make every node store and order.
    uint256 public constant MAX_FORCED_TX_BYTES = 131072;

    mapping(address => bool) public isPoster;
    uint64 public nextSequence;
    bytes32 public lastCommitment;
    uint64 public forcedCount;
    mapping(uint64 => bytes32) public commitments;

    /// The chain head in one call, so a reader sees both at the same block.
    function head() external view returns (uint64 sequence, bytes32 commitment) {
        return (nextSequence, lastCommitment);
    }

    constructor(address[] memory posters) {
        for (uint256 i = 0; i < posters.length; i++) {
            isPoster[posters[i]] = true;
        }
    }

    /// Posts batch `sequence` as calldata.
    function submitBatch(uint64 sequence, bytes calldata data) external {
        if (data.length == 0) revert EmptyBatch();
        _record(sequence, keccak256(data), false);
    }

    /// Posts batch `sequence` whose contents are the blobs carried by this transaction.
    function submitBlobBatch(uint64 sequence) external {
        bytes memory hashes;
        for (uint256 i = 0; ; i++) {
            bytes32 h = blobhash(i);
            if (h == bytes32(0)) break;
            hashes = bytes.concat(hashes, h);
        }
        if (hashes.length == 0) revert EmptyBatch();
        _record(sequence, keccak256(hashes), true);
    }

    /// Anyone may force a transaction into the ordered stream; sequencers must include it
    /// within the bound they advertise.
    function forceInclude(bytes calldata transaction) external {
        if (transaction.length > MAX_FORCED_TX_BYTES) {
            revert ForcedTxTooLarge(transaction.length, MAX_FORCED_TX_BYTES);
        }
        uint64 index = forcedCount;
        forcedCount = index + 1;
        emit ForceIncluded(index, msg.sender, transaction);
    }

    function _record(uint64 sequence, bytes32 dataHash, bool blob) private {
        if (!isPoster[msg.sender]) revert NotPoster(msg.sender);
        if (sequence != nextSequence) revert WrongSequence(nextSequence, sequence);
        bytes32 commitment = keccak256(abi.encodePacked(lastCommitment, dataHash));
        lastCommitment = commitment;
        commitments[sequence] = commitment;
        nextSequence = sequence + 1;
        emit BatchPosted(sequence, commitment, dataHash, msg.sender, blob);
    }
}
