/// An n-dimensional array in row-major (C) order, as HDF5 and NumPy lay it out.
///
/// `shape` is `[]` for a scalar, which holds one element.
public struct HDF5Array<Element: HDF5Element> {
    public var shape: [Int]
    public var values: [Element]

    public init(shape: [Int], values: [Element]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == values.count,
                     "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

extension HDF5Array: Equatable where Element: Equatable {}
