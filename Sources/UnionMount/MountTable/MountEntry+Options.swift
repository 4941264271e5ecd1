extension MountEntry {
    /// An option list of a mount table entry (``MountEntry/mountOptions`` or ``MountEntry/superOptions``): the
    /// options, already split and decoded, in the order the kernel printed them.
    ///
    /// A view of the entry's stored options: making one, counting it and ``contains(_:)`` allocate nothing; an
    /// element is made as a `String` when read (valid UTF-8 as is, other bytes as `\xNN`; see
    /// ``bytes(at:)`` for the exact bytes). Equal when the options are equal byte for byte, in order. An array
    /// literal makes a list of its own, e.g. to compare with: `entry.mountOptions == ["rw", "relatime"]`.
    public struct Options: RandomAccessCollection, Sendable, Hashable, ExpressibleByArrayLiteral,
        CustomStringConvertible
    {
        public typealias Indices = Range<Int>

        nonisolated(unsafe) let storage: MountEntryStorage
        let list: MountEntryStorage.List

        init(storage: MountEntryStorage, list: MountEntryStorage.List) {
            self.storage = storage
            self.list = list
        }

        /// A list of these options (empty ones dropped), for comparing or for building entries.
        public init(_ options: some Sequence<String>) {
            var builder = MountEntryBuilder()
            defer { builder.deallocate() }
            // Only the last field, the superblock options, holds anything.
            for _ in 0..<MountEntryStorage.Field.superOptions.rawValue { builder.plain([]) }
            builder.plainList(options.map { Array($0.utf8) })
            self.init(storage: builder.finish(), list: .superOptions)
        }

        /// A list of these options (empty ones dropped).
        public init(arrayLiteral options: String...) { self.init(options) }

        /// 0.
        public var startIndex: Int { 0 }
        /// The number of options.
        public var endIndex: Int { storage.count(list) }

        /// The option at `position`, as text.
        public subscript(position: Int) -> String {
            precondition(position >= 0 && position < endIndex, "MountEntry.Options: index out of range")
            return storage.withOption(list, position) { MountTableEscaping.string($0) }
        }

        /// The decoded bytes of the option at `position`, exactly as the kernel printed them.
        public func bytes(at position: Int) -> [UInt8] {
            precondition(position >= 0 && position < endIndex, "MountEntry.Options: index out of range")
            return storage.withOption(list, position) { Array($0) }
        }

        /// The decoded bytes of every option, exactly as the kernel printed them.
        public var bytes: [[UInt8]] { indices.map(bytes(at:)) }

        /// Calls `body` with the bytes of each option in turn.
        func forEachBytes(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
            for index in 0..<endIndex { storage.withOption(list, index, body) }
        }

        /// Whether `option` is one of the options, compared byte for byte.
        public func contains(_ option: String) -> Bool {
            var option = option
            return option.withUTF8 { wanted in
                (0..<endIndex).contains { index in storage.withOption(list, index) { $0.elementsEqual(wanted) } }
            }
        }

        /// The options joined with `,`, as text.
        public var description: String { map { $0 }.joined(separator: ",") }

        /// The options as the mount table prints them: each escaped (``MountTableEscaping/encode(_:)``), joined
        /// with `,`.
        var escapedText: String {
            var joined: [UInt8] = []
            forEachBytes { option in
                if !joined.isEmpty { joined.append(UInt8(ascii: ",")) }
                joined.append(contentsOf: MountTableEscaping.encode(Array(option)))
            }
            return joined.readable
        }

        /// Whether both lists have the same options, byte for byte, in order.
        public static func == (lhs: Options, rhs: Options) -> Bool {
            guard lhs.count == rhs.count else { return false }
            return (0..<lhs.count).allSatisfy { index in
                lhs.storage.withOption(lhs.list, index) { left in
                    rhs.storage.withOption(rhs.list, index) { right in left.elementsEqual(right) }
                }
            }
        }

        /// Hashes what ``==(_:_:)`` compares.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(count)
            forEachBytes { option in
                hasher.combine(option.count)
                hasher.combine(bytes: UnsafeRawBufferPointer(option))
            }
        }
    }
}
