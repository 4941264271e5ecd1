import UnionMount

/// Parses a `--sizes` value: layer counts from 1 to `OverlaySpec.maximumLayerCount` (500, overlay's limit), comma-separated; throws a message for
/// anything else. Shared by the benchmarks' command lines (swift-argument-parser shows the message).
public func layerCounts(_ text: String) throws -> [Int] {
    let counts = text.split(separator: ",").compactMap { Int($0) }
    guard !counts.isEmpty, counts.allSatisfy({ (1...OverlaySpec.maximumLayerCount).contains($0) }) else {
        throw LayerCountError()
    }
    return counts
}

/// The error ``layerCounts(_:)`` throws.
public struct LayerCountError: Error, CustomStringConvertible {
    public var description: String { "--sizes takes counts 1…500, comma-separated" }
}
