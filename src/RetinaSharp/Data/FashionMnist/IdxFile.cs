// The IDX file format of MNIST and Fashion-MNIST (yann.lecun.com/exdb/mnist, "FILE FORMATS"): a big-endian
// header (two zero bytes, a type code, the number of dimensions, then one int32 per dimension) followed by the
// data in row-major order. Read here for unsigned-byte data (type 0x08), optionally gzip-compressed.
using System.Buffers.Binary;
using System.IO.Compression;
using RetinaSharp.IO;

namespace RetinaSharp.Data.FashionMnist;

/// <summary>An IDX array of unsigned bytes: its dimensions and its data (row-major).</summary>
/// <param name="Dimensions">The sizes, outermost first (for images: count, rows, columns).</param>
/// <param name="Data">Product(Dimensions) bytes.</param>
public sealed record IdxArray(int[] Dimensions, byte[] Data);

/// <summary>Reads IDX files (raw or .gz).</summary>
public static class IdxFile
{
    /// <summary>The type code of unsigned bytes, the only type Fashion-MNIST uses.</summary>
    public const byte UnsignedByte = 0x08;

    /// <summary>Reads an IDX file of unsigned bytes; a name ending in ".gz" is decompressed first.</summary>
    /// <param name="path">The file.</param>
    /// <param name="expectedDimensions">When given, the number of dimensions the file must have (3 for images, 1 for labels).</param>
    /// <exception cref="DataFormatException">Missing file, bad gzip data, bad magic number (non-zero first bytes, a type other than 0x08,
    /// an unexpected number of dimensions), a negative size, or a data length that differs from the header's.</exception>
    public static IdxArray Read(string path, int? expectedDimensions = null)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, null, null, "IDX file not found");
        byte[] bytes;
        try
        {
            using var file = File.OpenRead(path);
            using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            bytes = ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, null, null, $"not valid gzip data: {e.Message}", e);
        }
        return Parse(path, bytes, expectedDimensions);
    }

    /// <summary>Parses the bytes of an (uncompressed) IDX file; <paramref name="path"/> only names it in errors.</summary>
    /// <exception cref="DataFormatException">See <see cref="Read"/>.</exception>
    public static IdxArray Parse(string path, ReadOnlySpan<byte> bytes, int? expectedDimensions = null)
    {
        if (bytes.Length < 4)
            throw new DataFormatException(path, null, "magic", $"file too short for an IDX header ({bytes.Length} bytes)");
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(bytes);
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new DataFormatException(path, null, "magic", $"0x{magic:X8} is not an IDX magic number (the first two bytes must be zero)");
        if (bytes[2] != UnsignedByte)
            throw new DataFormatException(path, null, "magic", $"0x{magic:X8}: data type 0x{bytes[2]:X2} is not supported (expected 0x08, unsigned byte)");
        int dims = bytes[3];
        if (dims == 0 || (expectedDimensions is int e && dims != e))
            throw new DataFormatException(path, null, "magic", $"0x{magic:X8}: {dims} dimensions, expected {expectedDimensions?.ToString() ?? "at least 1"}");
        int header = 4 + 4 * dims;
        if (bytes.Length < header)
            throw new DataFormatException(path, null, "dimensions", $"file too short for {dims} dimension sizes ({bytes.Length} bytes)");
        var sizes = new int[dims];
        long count = 1;
        for (int i = 0; i < dims; i++)
        {
            int n = BinaryPrimitives.ReadInt32BigEndian(bytes[(4 + 4 * i)..]);
            if (n < 0)
                throw new DataFormatException(path, null, $"dimension {i}", $"negative size {n}");
            sizes[i] = n;
            count *= n;
        }
        long actual = bytes.Length - header;
        if (actual != count)
            throw new DataFormatException(path, null, "data", $"header declares {string.Join("x", sizes)} = {count} bytes of data, the file holds {actual}"
                + (actual < count ? " (truncated)" : " (trailing bytes)"));
        return new IdxArray(sizes, bytes[header..].ToArray());
    }
}
