// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The weft committee, as L1 checks it
/// @notice One secp256k1 attestation address and stake per authority, fixed at deployment,
/// and the check that a digest carries signatures of at least quorum stake (2S/3 + 1, as
/// `weft_types::Committee::quorum_threshold`). `committeeId` is computed exactly as
/// `weft_attest::committee_id`, so what the committee signs names this contract's committee.
/// The inbox inherits it.
contract CommitteeQuorum {
    /// Fewer signers' stake than the quorum.
    error BelowQuorum(uint256 stake, uint256 quorum);
    /// Signer entries must name authorities in strictly ascending order (each once).
    error SignersOutOfOrder(uint256 position);
    error UnknownAuthority(uint256 authority);
    /// The entry's signature does not recover to its authority's address (or is malleable).
    error BadSignature(uint256 authority);
    /// `signatures` is not a whole number of 67-byte entries.
    error MalformedSignatures(uint256 length);
    error EmptyCommittee();
    error LengthMismatch();
    error ZeroStake(uint256 authority);

    bytes32 public constant COMMITTEE_DOMAIN = keccak256("weft.committee.v1");
    /// secp256k1n / 2: a larger s is the malleable twin of a valid signature.
    uint256 private constant HALF_N =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    uint256 private constant ENTRY = 67;

    /// An authority's address and stake share one storage slot: one cold read per signer.
    struct Member {
        address signer;
        uint64 stake;
    }

    bytes32 public immutable committeeId;
    uint256 public immutable quorum;
    Member[] public members;

    constructor(uint64 epoch, address[] memory signers_, uint64[] memory stakes_) {
        if (signers_.length == 0) revert EmptyCommittee();
        if (signers_.length != stakes_.length) revert LengthMismatch();
        bytes memory id = abi.encode(COMMITTEE_DOMAIN, uint256(epoch));
        uint256 total;
        for (uint256 i = 0; i < signers_.length; i++) {
            if (stakes_[i] == 0) revert ZeroStake(i);
            total += stakes_[i];
            id = bytes.concat(id, abi.encode(signers_[i], uint256(stakes_[i])));
        }
        committeeId = keccak256(id);
        quorum = (2 * total) / 3 + 1;
        for (uint256 i = 0; i < signers_.length; i++) {
            members.push(Member(signers_[i], stakes_[i]));
        }
    }

    /// Reverts unless `signatures` (entries of `authority uint16 ‖ r ‖ s ‖ v`, big-endian,
    /// authorities ascending) carry quorum stake over `digest`; returns the stake.
    function checkQuorum(bytes32 digest, bytes calldata signatures)
        public
        view
        returns (uint256 stake)
    {
        if (signatures.length % ENTRY != 0) revert MalformedSignatures(signatures.length);
        uint256 count = signatures.length / ENTRY;
        uint256 next;
        for (uint256 i = 0; i < count; i++) {
            uint256 at = i * ENTRY;
            uint256 authority = uint16(bytes2(signatures[at:at + 2]));
            if (authority < next) revert SignersOutOfOrder(i);
            next = authority + 1;
            if (authority >= members.length) revert UnknownAuthority(authority);
            bytes32 r = bytes32(signatures[at + 2:at + 34]);
            bytes32 s = bytes32(signatures[at + 34:at + 66]);
            uint8 v = uint8(signatures[at + 66]);
            if (uint256(s) > HALF_N) revert BadSignature(authority);
            Member memory member = members[authority];
            address recovered = ecrecover(digest, v, r, s);
            if (recovered == address(0) || recovered != member.signer) {
                revert BadSignature(authority);
            }
            stake += member.stake;
        }
        if (stake < quorum) revert BelowQuorum(stake, quorum);
    }
}
