package chunker

import (
	"encoding/binary"

	"github.com/zeebo/blake3"
)

// Known-answer vectors. Seed: the bytes 0x00, 0x01, ..., 0x1f (katSeed).
// Input: the first size bytes of the BLAKE3 extendable output of the
// unkeyed message "bulwark chunker test input" (katInput), or size zero
// bytes. They change only with the repository format version.

const (
	katGear0   = 0xe4d476f6705f2042
	katGear1   = 0x58fbf3b25bc3b531
	katGear255 = 0x538da58d9a5da514
	// katTableDigest is the unkeyed BLAKE3-256 of gear[0..255] as 256
	// little-endian uint64s (tableDigest).
	katTableDigest = "8ac0c9ddf555bdad2c994bcb673b38a08927405ebcbec1c60fd4963f43aee879"
)

// tableDigest hashes a table for the known-answer test.
func tableDigest(t *Table) [32]byte {
	var b [256 * 8]byte
	for i, w := range t {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return blake3.Sum256(b[:])
}

type knownAnswer struct {
	name    string
	p       Params
	size    int
	zero    bool
	lengths []int
}

var knownAnswers = []knownAnswer{
	{
		name: "default params",
		p:    Params{Min: 524288, Avg: 1048576, Max: 8388608},
		size: 20971520, zero: false,
		lengths: []int{
			1494823, 1406695, 1122006, 1368486, 1131537, 1232486, 2025354, 2019413,
			1277289, 1143072, 1147750, 1813673, 1501642, 1250701, 1036593,
		},
	},
	{
		name: "avg 512 KiB",
		p:    Params{Min: 262144, Avg: 524288, Max: 4194304},
		size: 20971520, zero: false,
		lengths: []int{
			589427, 881852, 508687, 921552, 606225, 535045, 742801, 606421,
			824679, 530674, 641428, 441836, 702038, 1233214, 564090, 981676,
			683572, 753775, 599590, 872579, 1014319, 412078, 534368, 1000658,
			609353, 542009, 571025, 531635, 573643, 958186, 3085,
		},
	},
	{
		name: "avg 8 KiB",
		p:    Params{Min: 2048, Avg: 8192, Max: 65536},
		size: 1048576, zero: false,
		lengths: []int{
			4407, 10016, 10983, 7518, 13537, 8207, 10647, 9455,
			10692, 9678, 10488, 12423, 8503, 10354, 12635, 8810,
			9888, 8248, 9284, 10706, 3572, 15074, 12139, 2283,
			10468, 5123, 10153, 8620, 8939, 11750, 11154, 6566,
			10815, 9430, 11461, 15870, 12610, 9111, 8810, 12616,
			8440, 12805, 2932, 9503, 10114, 5974, 7286, 9932,
			12816, 7673, 8595, 8274, 8979, 9815, 11604, 11667,
			8571, 9141, 12543, 9681, 4783, 5256, 9843, 8883,
			12045, 2644, 2912, 9141, 13500, 11422, 15567, 8343,
			10524, 8554, 9810, 8672, 12801, 8532, 12945, 5794,
			8313, 5172, 9989, 9100, 8359, 10823, 11662, 9511,
			5158, 9486, 14629, 12297, 8337, 9392, 8465, 10033,
			10246, 9604, 7732, 9632, 9722, 9267, 2448, 9625,
			8736, 10136, 10740, 14128, 10975, 10043, 3457,
		},
	},
	{
		name: "small params",
		p:    Params{Min: 64, Avg: 256, Max: 1024},
		size: 16384, zero: false,
		lengths: []int{
			322, 279, 281, 330, 276, 275, 285, 473,
			364, 306, 304, 137, 293, 330, 152, 276,
			283, 324, 534, 432, 272, 285, 247, 370,
			370, 271, 398, 286, 262, 581, 136, 274,
			194, 276, 274, 288, 253, 408, 332, 277,
			682, 319, 301, 292, 347, 172, 88, 261,
			268, 154, 247, 375, 169, 175, 220, 4,
		},
	},
	{
		name: "zeros, default params",
		p:    Params{Min: 524288, Avg: 1048576, Max: 8388608},
		size: 16777221, zero: true,
		lengths: []int{
			8388608, 8388608, 5,
		},
	},
	{
		name: "zeros, small params",
		p:    Params{Min: 64, Avg: 256, Max: 1024},
		size: 5000, zero: true,
		lengths: []int{
			1024, 1024, 1024, 1024, 904,
		},
	},
}
