/// Data set files built in memory, for the tests of every target that reads them.
public enum SyntheticDataFiles {
    /// The bytes a hexadecimal string spells, two digits each.
    public static func bytes(hex: String) -> [UInt8] {
        var result = [UInt8]()
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    /// Python: `struct.pack(">IIII", 0x803, 3, 4, 5) + bytes(range(60))`, gzipped.
    public static let idxImagesGzip = bytes(hex: "1f8b08000000000002036360e06066606000611620666560646266616563e7e0e4e2e6e1e5e3171014121611151397909492969195935750545256515553d7d0d4d2d6d1d5d33730343236313533b7b0b4b20600ec1a955b4c000000")
    /// Python: `struct.pack(">II", 0x801, 3) + bytes([9, 0, 3])`, gzipped.
    public static let idxLabelsGzip = bytes(hex: "1f8b08000000000002036360e06064606060e664600600b1d698980b000000")

    public static func idxImages(count: Int, height: Int, width: Int, pixel: (Int) -> UInt8) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, 3]
        for size in [count, height, width] {
            bytes += [UInt8(size >> 24 & 255), UInt8(size >> 16 & 255), UInt8(size >> 8 & 255), UInt8(size & 255)]
        }
        return bytes + (0..<count * height * width).map(pixel)
    }

    public static func idxLabels(_ labels: [UInt8]) -> [UInt8] {
        let count = labels.count
        return [0, 0, 8, 1, UInt8(count >> 24 & 255), UInt8(count >> 16 & 255), UInt8(count >> 8 & 255), UInt8(count & 255)] + labels
    }
}
