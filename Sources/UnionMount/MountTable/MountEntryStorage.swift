/// The decoded fields of one ``MountEntry``, in one allocation of its own.
///
/// The text fields are stored one after the other, already decoded (the `\ooo` escapes resolved), in a fixed
/// order (``Field``); an option list is stored as its decoded options back to back, and a table of where each
/// option ends follows all the bytes. An entry shares this storage with its copies only, never with other
/// entries, so keeping one entry keeps only its own bytes. Immutable once made (by ``MountEntryBuilder``).
final class MountEntryStorage: ManagedBuffer<MountEntryStorage.Header, UInt8>, @unchecked Sendable {
    /// The fields, in storage order.
    enum Field: Int {
        case root, mountPoint, filesystemType, source, optionalFields, rawSuperOptions, mountOptions, superOptions
    }

    /// The two option lists.
    enum List: Sendable {
        case mountOptions, superOptions

        var field: Field { self == .mountOptions ? .mountOptions : .superOptions }
    }

    /// Where the fields and the option table are.
    struct Header: Equatable {
        /// Where each ``Field`` ends (it starts where the one before ends).
        var ends: SIMD8<UInt32>
        /// How many options each list has.
        var mountOptionCount: UInt32
        var superOptionCount: UInt32
        /// Where the table of option ends starts (4-byte aligned, after every field's bytes): the mount options'
        /// ends, then the superblock options', each relative to its list's first byte.
        var table: UInt32
        /// How many bytes are used in all.
        var size: UInt32
    }

    /// Calls `body` with the bytes of `field`.
    @inline(__always)
    func withBytes<R>(_ field: Field, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withUnsafeMutablePointers { header, elements in
            let index = field.rawValue
            let start = index == 0 ? 0 : Int(header.pointee.ends[index &- 1])
            let end = Int(header.pointee.ends[index])
            return body(UnsafeBufferPointer(start: elements + start, count: end &- start))
        }
    }

    /// How many options `list` has.
    @inline(__always)
    func count(_ list: List) -> Int {
        Int(list == .mountOptions ? header.mountOptionCount : header.superOptionCount)
    }

    /// Calls `body` with the bytes of option `index` of `list` (which the caller has checked is in range).
    @inline(__always)
    func withOption<R>(_ list: List, _ index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withUnsafeMutablePointers { header, elements in
            let fieldIndex = list.field.rawValue
            let listStart = Int(header.pointee.ends[fieldIndex &- 1])
            let slot = list == .mountOptions ? index : Int(header.pointee.mountOptionCount) &+ index
            let table = UnsafeRawPointer(elements + Int(header.pointee.table))
            let end = Int(table.loadUnaligned(fromByteOffset: slot &* 4, as: UInt32.self))
            let start =
                index == 0 ? 0 : Int(table.loadUnaligned(fromByteOffset: (slot &- 1) &* 4, as: UInt32.self))
            return body(UnsafeBufferPointer(start: elements + (listStart &+ start), count: end &- start))
        }
    }

    /// Whether two storages hold the same fields (byte for byte: the layout is canonical).
    func hasSameContents(as other: MountEntryStorage) -> Bool {
        if self === other { return true }
        let header = self.header
        guard header == other.header else { return false }
        return withUnsafeMutablePointerToElements { left in
            other.withUnsafeMutablePointerToElements { right in bytesEqual(left, right, count: Int(header.size)) }
        }
    }

    /// Feeds every byte of the fields to `hasher`.
    func hash(into hasher: inout Hasher) {
        withUnsafeMutablePointers { header, elements in
            hasher.combine(header.pointee.mountOptionCount)
            hasher.combine(header.pointee.superOptionCount)
            hasher.combine(bytes: UnsafeRawBufferPointer(start: elements, count: Int(header.pointee.size)))
        }
    }
}
