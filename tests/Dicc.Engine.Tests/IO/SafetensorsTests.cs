using System.Buffers.Binary;
using System.Text;
using Dicc.Engine.IO;
using NUnit.Framework;

namespace Dicc.Engine.Tests.IO;

public class SafetensorsTests
{
    private static byte[] FloatBytes(params float[] values) =>
        values.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>8-byte length, header text, data: what a file with exactly this header contains.</summary>
    private static byte[] Craft(string header, byte[] data, ulong? declaredLength = null)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, declaredLength ?? (ulong)h.Length);
        h.CopyTo(file, 8);
        data.CopyTo(file, 8 + h.Length);
        return file;
    }

    private static byte[] Serialize(params (string Name, SafetensorsTensor Tensor)[] tensors) =>
        SafetensorsWriter.Serialize(tensors.Select(t => KeyValuePair.Create(t.Name, t.Tensor)));

    private static SafetensorsContent ReadBytes(byte[] file, string name = "model.safetensors") =>
        SafetensorsReader.Read(new MemoryStream(file), name);

    // ---- Byte-exact agreement with the reference writer (vectors from huggingface/safetensors' own tests) ----

    [Test]
    public void Writer_MatchesReferenceVector_OneF32Tensor()
    {
        byte[] data = FloatBytes(0, 1, 2, 3, 4, 5);
        byte[] file = Serialize(("attn.0", new SafetensorsTensor(SafetensorsDType.Float32, [1, 2, 3], data)));
        // Header is exactly 64 bytes, so no padding.
        Assert.That(file, Is.EqualTo(Craft("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", data)));
        Assert.That(file[..8], Is.EqualTo(new byte[] { 64, 0, 0, 0, 0, 0, 0, 0 }));
    }

    [Test]
    public void Writer_MatchesReferenceVector_PaddingWithSpaces()
    {
        byte[] data = FloatBytes(0, 1, 2, 3, 4, 5);
        byte[] file = Serialize(("attn0", new SafetensorsTensor(SafetensorsDType.Float32, [1, 1, 2, 3], data)));
        // 65 bytes of JSON padded to 72 with 7 spaces.
        Assert.That(file, Is.EqualTo(Craft("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ", data)));
        Assert.That(file[0], Is.EqualTo(72));
    }

    [Test]
    public void Writer_MatchesReferenceVector_EmptyFileWithAndWithoutMetadata()
    {
        Assert.That(SafetensorsWriter.Serialize([]),
            Is.EqualTo(new byte[] { 8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32 }));
        var metadata = new Dictionary<string, string> { ["framework"] = "pt" };
        Assert.That(SafetensorsWriter.Serialize([], metadata),
            Is.EqualTo(Craft("{\"__metadata__\":{\"framework\":\"pt\"}}     ", [])));
    }

    [Test]
    public void Writer_OrdersTensorsByDescendingDTypeThenName()
    {
        byte[] file = Serialize(
            ("b.flag", SafetensorsTensor.From(new[] { true }, 1)),
            ("a.pixels", SafetensorsTensor.From(new byte[] { 1, 2 }, 2)),
            ("z.weight", SafetensorsTensor.From(new[] { 1f }, 1)),
            ("a.weight", SafetensorsTensor.From(new[] { 2f }, 1)),
            ("labels", SafetensorsTensor.From(new[] { 3 }, 1)),
            ("step", SafetensorsTensor.From(new[] { 4L }, [])),
            ("mean", SafetensorsTensor.From(new[] { 5.0 }, 1)));
        var header = SafetensorsReader.ReadHeader(new MemoryStream(file), "ordered");
        Assert.That(header.Tensors.Select(t => t.Name),
            Is.EqualTo(new[] { "step", "mean", "a.weight", "z.weight", "labels", "a.pixels", "b.flag" }),
            "I64, F64, F32 (by name), I32, U8, BOOL: the reference's dtype order, widest first");
        Assert.That(header.Tensors.Select(t => (t.Begin, t.End)),
            Is.EqualTo(new[] { (0L, 8L), (8L, 16L), (16L, 20L), (20L, 24L), (24L, 28L), (28L, 30L), (30L, 31L) }));
        Assert.That(header.HeaderLength % 8, Is.EqualTo(0));
    }

    [Test]
    public void Writer_EscapesStringsLikeSerdeJson()
    {
        var metadata = new Dictionary<string, string> { ["note"] = "a\"b\\c\nd\u0001é/<" };
        byte[] file = SafetensorsWriter.Serialize([], metadata);
        string header = Encoding.UTF8.GetString(file, 8, file.Length - 8).TrimEnd(' ');
        Assert.That(header, Is.EqualTo("{\"__metadata__\":{\"note\":\"a\\\"b\\\\c\\nd\\u0001é/<\"}}"));
    }

    // ---- Round trips ----

    [Test]
    public void RoundTrip_IsBitExactForEveryElementType()
    {
        float[] floats = [0f, -0f, 1.5f, float.Epsilon, float.MaxValue, float.NegativeInfinity,
            BitConverter.Int32BitsToSingle(0x7FC00001), BitConverter.Int32BitsToSingle(unchecked((int)0xFFBADBAD))];
        double[] doubles = [Math.PI, -0.0, double.NaN, 5e-324];
        int[] ints = [int.MinValue, -1, 0, int.MaxValue, 7, 8];
        long[] longs = [long.MinValue, long.MaxValue, 42];
        byte[] bytes = [0, 127, 255];
        bool[] bools = [true, false, true, true];
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "dicc-checkpoint-1", ["epoch"] = "12", ["unicode"] = "härte 表情 \"quoted\"\t",
        };
        var tensors = new Dictionary<string, SafetensorsTensor>
        {
            ["backbone.conv1.weight"] = SafetensorsTensor.From(floats, 2, 2, 2),
            ["dicc.centers"] = SafetensorsTensor.From(doubles, 2, 2),
            ["labels"] = SafetensorsTensor.From(ints, 2, 3),
            ["step"] = SafetensorsTensor.From(longs, 3),
            ["pixels"] = SafetensorsTensor.From(bytes, 3),
            ["seen"] = SafetensorsTensor.From(bools, 4),
            ["scalar"] = SafetensorsTensor.From(new[] { 2.5f }, []),
            ["empty"] = SafetensorsTensor.From(Array.Empty<float>(), 0, 3),
        };

        byte[] file = SafetensorsWriter.Serialize(tensors, metadata);
        var read = ReadBytes(file);

        Assert.That(read.Metadata, Is.EquivalentTo(metadata));
        Assert.That(read.Names, Is.EquivalentTo(tensors.Keys));
        foreach (var (name, expected) in tensors)
        {
            var actual = read[name];
            Assert.That(actual.DType, Is.EqualTo(expected.DType), name);
            Assert.That(actual.Shape, Is.EqualTo(expected.Shape), name);
            Assert.That(actual.Data.ToArray(), Is.EqualTo(expected.Data.ToArray()), $"{name}: bytes");
        }
        Assert.That(read["backbone.conv1.weight"].ToArray<float>().Select(BitConverter.SingleToInt32Bits),
            Is.EqualTo(floats.Select(BitConverter.SingleToInt32Bits)), "NaN payloads and -0 survive");
        Assert.That(read["seen"].ToArray<bool>(), Is.EqualTo(bools));
        Assert.That(read["scalar"].Rank, Is.EqualTo(0));
        Assert.That(read["scalar"].ElementCount, Is.EqualTo(1));
        Assert.That(read["empty"].ElementCount, Is.EqualTo(0));
        Assert.That(SafetensorsWriter.Serialize(read.Tensors, read.Metadata), Is.EqualTo(file),
            "writing what was read gives the same bytes");
    }

    [Test]
    public void File_SaveAndLoad_RoundTripAndNameTheFileOnError()
    {
        string folder = Path.Combine(Path.GetTempPath(), "dicc-st-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            string path = Path.Combine(folder, "last.safetensors");
            SafetensorsFile.Save(path, new Dictionary<string, SafetensorsTensor>
            {
                ["w"] = SafetensorsTensor.From(new[] { 1f, 2f, 3f }, 3),
            }, new Dictionary<string, string> { ["epoch"] = "3" });
            var loaded = SafetensorsFile.Load(path);
            Assert.That(loaded["w"].ToArray<float>(), Is.EqualTo(new[] { 1f, 2f, 3f }));
            Assert.That(loaded.Metadata["epoch"], Is.EqualTo("3"));
            Assert.That(SafetensorsFile.ReadHeader(path).Tensors.Single().Shape, Is.EqualTo(new long[] { 3 }));

            File.WriteAllBytes(path, File.ReadAllBytes(path)[..^1]);
            var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Load(path));
            Assert.That(e!.Message, Does.StartWith(path + ": "));
            Assert.That(e.SourceName, Is.EqualTo(path));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Test]
    public void File_StreamingSaveThatFails_KeepsThePreviousCheckpoint()
    {
        string folder = Path.Combine(Path.GetTempPath(), "dicc-st-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            string path = Path.Combine(folder, "last.safetensors");
            SafetensorsFile.Save(path, new Dictionary<string, SafetensorsTensor> { ["w"] = SafetensorsTensor.From(new[] { 1f }, 1) });
            byte[] before = File.ReadAllBytes(path);
            var specs = new Dictionary<string, SafetensorsTensorSpec>
            {
                ["a"] = new(SafetensorsDType.Float32, [2]),
                ["b"] = new(SafetensorsDType.Float32, [2]),
            };
            Assert.Throws<InvalidOperationException>(() => SafetensorsFile.Save(path, specs, null, (name, stream) =>
            {
                if (name == "b") throw new InvalidOperationException("copy from device failed");
                stream.Write(FloatBytes(1, 2));
            }));
            Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
            Assert.That(Directory.GetFiles(folder), Has.Length.EqualTo(1));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Test]
    public void StreamingWriter_MatchesTheInMemoryWriter()
    {
        var tensors = new Dictionary<string, SafetensorsTensor>
        {
            ["x"] = SafetensorsTensor.From(new[] { 1.0, 2.0 }, 2),
            ["y"] = SafetensorsTensor.From(new[] { 3, 4, 5 }, 3),
        };
        using var streamed = new MemoryStream();
        SafetensorsWriter.Write(streamed,
            tensors.Select(p => KeyValuePair.Create(p.Key, new SafetensorsTensorSpec(p.Value.DType, p.Value.Shape))),
            null,
            (name, stream) =>
            {
                foreach (byte b in tensors[name].Data.Span) stream.WriteByte(b); // in pieces, as a device copy would
            });
        Assert.That(streamed.ToArray(), Is.EqualTo(SafetensorsWriter.Serialize(tensors)));
    }

    // ---- Writer refuses bad input ----

    [Test]
    public void Writer_RefusesBadInput()
    {
        Assert.That(() => new SafetensorsTensor(SafetensorsDType.Float32, [2, 2], new byte[15]),
            Throws.ArgumentException.With.Message.Contains("needs 16 bytes; 15 were given"));
        Assert.That(() => new SafetensorsTensor(SafetensorsDType.Float32, [-1], Array.Empty<byte>()),
            Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => Serialize(("__metadata__", SafetensorsTensor.From(new[] { 1f }, 1))),
            Throws.ArgumentException.With.Message.Contains("reserved"));
        Assert.That(() => Serialize(("a", SafetensorsTensor.From(new[] { 1f }, 1)), ("a", SafetensorsTensor.From(new[] { 1f }, 1))),
            Throws.ArgumentException.With.Message.Contains("'a' is given twice"));
        Assert.That(() => Serialize(("bad\ud800", SafetensorsTensor.From(new[] { 1f }, 1))),
            Throws.ArgumentException.With.Message.Contains("not valid Unicode"));
        Assert.That(() => SafetensorsTensor.From(new[] { 1f }, 1).AsSpan<int>().Length,
            Throws.InvalidOperationException.With.Message.Contains("F32"));
    }

    [TestCase(1, "wrote 4")]
    [TestCase(3, "tried to write 12")]
    public void StreamingWriter_RefusesAWriterThatWritesTheWrongSize(int floatsWritten, string expected)
    {
        var specs = new[] { KeyValuePair.Create("w", new SafetensorsTensorSpec(SafetensorsDType.Float32, [2])) };
        Assert.That(() => SafetensorsWriter.Write(new MemoryStream(), specs, null,
                (_, s) => s.Write(FloatBytes(new float[floatsWritten]))),
            Throws.InvalidOperationException.With.Message.Contains("'w' needs 8 bytes").And.Message.Contains(expected));
    }

    // ---- Reader refuses every malformed file, naming the file and the rule ----

    private static readonly byte[] EightBytes = new byte[8];
    private const string OneTensor = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    private static IEnumerable<TestCaseData> MalformedFiles()
    {
        TestCaseData Case(string name, byte[] file, string expected) => new TestCaseData(file, expected).SetName("Reader_Refuses_" + name);

        yield return Case("FileShorterThanTheLength", [1, 0, 0], "fewer than the 8-byte header length");
        yield return Case("HeaderLargerThan100MB", Craft(OneTensor, EightBytes, declaredLength: 100_000_001), "more than the 100000000 allowed");
        yield return Case("HeaderLengthBeyondTheFile", Craft(OneTensor, EightBytes, declaredLength: 1000), "the file has only");
        yield return Case("HeaderLengthOfZero", Craft("", []), "not valid JSON");
        var badUtf8 = Craft("{\"w\":1}", []);
        badUtf8[10] = 0xFF;
        yield return Case("InvalidUtf8", badUtf8, "not valid UTF-8");
        yield return Case("InvalidJson", Craft("{\"w\":", []), "not valid JSON");
        yield return Case("JsonThatIsNotAnObject", Craft("[1,2]   ", []), "JSON Array, not an object");
        yield return Case("MetadataNotAnObject", Craft("{\"__metadata__\":\"x\"}", []), "'__metadata__' is a JSON String");
        yield return Case("MetadataValueNotAString", Craft("{\"__metadata__\":{\"epoch\":3}}", []), "metadata entry 'epoch' is a JSON Number");
        yield return Case("TensorEntryNotAnObject", Craft("{\"w\":[0,8]}", EightBytes), "tensor 'w' is a JSON Array");
        yield return Case("MissingDType", Craft("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", EightBytes), "tensor 'w' has no \"dtype\"");
        yield return Case("UnknownDType", Craft("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", EightBytes), "dtype \"F8_E4M3\", which this reader does not support");
        yield return Case("MissingShape", Craft("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", EightBytes), "no \"shape\" array");
        yield return Case("NegativeDimension", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", EightBytes), "dimensions must be non-negative integers");
        yield return Case("FractionalDimension", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", EightBytes), "dimensions must be non-negative integers");
        yield return Case("ShapeOverflow", Craft("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", EightBytes), "overflows 64 bits");
        yield return Case("OffsetsNotAPair", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", EightBytes), "no \"data_offsets\" array [begin, end]");
        yield return Case("NegativeOffset", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", EightBytes), "offsets must be non-negative integers");
        yield return Case("EndBeforeBegin", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", EightBytes), "the end lies before the begin");
        yield return Case("SpanNotMatchingDTypeTimesShape", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", EightBytes), "needs 12 bytes, but its data_offsets [0, 8] span 8");
        yield return Case("FirstTensorNotAtZero", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", EightBytes), "starts at data offset 4, not 0");
        yield return Case("GapBetweenTensors", Craft(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
            new byte[12]), "4 unused bytes lie between tensor 'a' (ends at 4) and tensor 'b'");
        yield return Case("OverlappingTensors", Craft(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            EightBytes), "tensor 'b' [4, 8) overlaps tensor 'a'");
        yield return Case("DuplicateTensorName", Craft(
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            EightBytes), "names 'w' twice");
        yield return Case("TrailingBytes", Craft(OneTensor, new byte[10]), "2 bytes follow the last tensor");
        yield return Case("TruncatedData", Craft(OneTensor, new byte[6]), "the file is truncated");
        yield return Case("BoolByteThatIsNotZeroOrOne", Craft("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}", [1, 0, 2]), "holds the byte 2 at element 2");
    }

    [TestCaseSource(nameof(MalformedFiles))]
    public void Reader_RefusesMalformedFiles(byte[] file, string expected)
    {
        var e = Assert.Throws<SafetensorsFormatException>(() => ReadBytes(file, "runs/x/last.safetensors"));
        Assert.That(e!.Message, Does.StartWith("runs/x/last.safetensors: not a valid safetensors file: "));
        Assert.That(e.Message, Does.Contain(expected));
    }

    [Test]
    public void Reader_OnANonSeekableStream_StillDetectsTruncationAndTrailingBytes()
    {
        var truncated = Assert.Throws<SafetensorsFormatException>(() =>
            SafetensorsReader.Read(new ForwardOnlyStream(Craft(OneTensor, new byte[6])), "pipe"));
        Assert.That(truncated!.Message, Does.Contain("truncated inside tensor 'w' (6 of its 8 bytes"));
        var trailing = Assert.Throws<SafetensorsFormatException>(() =>
            SafetensorsReader.Read(new ForwardOnlyStream(Craft(OneTensor, new byte[9])), "pipe"));
        Assert.That(trailing!.Message, Does.Contain("bytes follow the last tensor"));
        Assert.That(SafetensorsReader.Read(new ForwardOnlyStream(Craft(OneTensor, FloatBytes(1, 2))), "pipe")["w"].ToArray<float>(),
            Is.EqualTo(new[] { 1f, 2f }));
    }

    [Test]
    public void Reader_AcceptsWhatOtherWritersMayProduce()
    {
        // Tensors listed out of offset order, an unpadded header, a null __metadata__ and extra fields.
        string header = "{\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[4,12],\"extra\":1},"
                        + "\"__metadata__\":null,\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
        byte[] data = [0, 0x3C, 0, 0xC0, 7, 0, 0, 0, 0, 0, 0, 0];
        var read = ReadBytes(Craft(header, data));
        Assert.That(read.Names, Is.EqualTo(new[] { "a", "b" }));
        Assert.That(read.Metadata, Is.Empty);
        Assert.That(read["a"].ToArray<Half>(), Is.EqualTo(new[] { (Half)1, (Half)(-2) }));
        Assert.That(read["b"].ToArray<long>(), Is.EqualTo(new[] { 7L }));
        Assert.That(() => read["c"], Throws.InstanceOf<KeyNotFoundException>().With.Message.Contains("'c'"));
    }

    private sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 3));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
