import SystemPackage

/// A path as a dictionary key, hashed in one pass over its bytes without copying them (`FilePath`'s own hash
/// goes byte by byte).
struct PathKey: Hashable {
    let path: FilePath

    init(_ path: FilePath) { self.path = path }

    func hash(into hasher: inout Hasher) {
        path.withNulTerminatedBytes {
            hasher.combine(bytes: UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count - 1))
        }
    }

    static func == (lhs: PathKey, rhs: PathKey) -> Bool {
        lhs.path.withNulTerminatedBytes { left in
            rhs.path.withNulTerminatedBytes { right in
                left.count == right.count && bytesEqual(left.baseAddress!, right.baseAddress!, count: left.count)
            }
        }
    }
}
