using System.Text;
using Dicc.Engine.IO;
using NUnit.Framework;

namespace Dicc.Engine.Tests.IO;

public class NpyTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("dicc-npy-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>A .npy file with a hand-written header (any version) and raw data.</summary>
    private string WriteRaw(string name, string dict, byte[] data, int major = 1)
    {
        var header = Encoding.UTF8.GetBytes(dict + "\n");
        using var s = File.Create(PathOf(name));
        s.Write(Magic);
        s.WriteByte((byte)major);
        s.WriteByte(0);
        if (major == 1) s.Write(BitConverter.GetBytes((ushort)header.Length));
        else s.Write(BitConverter.GetBytes((uint)header.Length));
        s.Write(header);
        s.Write(data);
        return PathOf(name);
    }

    [Test]
    public void Writer_ProducesNumPysBytes()
    {
        // np.save of np.arange(3, dtype='<i8') (NumPy 1.24): a 128-byte v1.0 header, dict padded with spaces.
        string path = PathOf("a.npy");
        Npy.Write<long>(path, [0, 1, 2], 3);
        const string dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
        var expected = new List<byte>(Magic) { 1, 0, 118, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes(dict.PadRight(117) + "\n"));
        expected.AddRange(new long[] { 0, 1, 2 }.SelectMany(BitConverter.GetBytes));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(expected.ToArray()));
    }

    [Test]
    public void RoundTrip_EveryTypeAndShape()
    {
        Check<float>("f.npy", [1.5f, -2, float.MaxValue, 0, 1e-30f, 7], NpyDType.Float32, 2, 3);
        Check<double>("d.npy", [Math.PI, -1e300], NpyDType.Float64, 2);
        Check<int>("i.npy", [int.MinValue, 0, int.MaxValue, 5], NpyDType.Int32, 1, 2, 2);
        Check<long>("l.npy", [long.MinValue, 42], NpyDType.Int64, 2, 1);
        Check<byte>("b.npy", [0, 255, 128], NpyDType.UInt8, 3);
        Check<float>("scalar.npy", [3.25f], NpyDType.Float32);
        Check<int>("empty.npy", [], NpyDType.Int32, 0);
        Check<float>("empty-rows.npy", [], NpyDType.Float32, 0, 512);

        void Check<T>(string name, T[] data, NpyDType dtype, params long[] shape) where T : unmanaged
        {
            string path = PathOf(name);
            Npy.Write<T>(path, data, shape);
            Assert.That(new FileInfo(path).Length % 64, Is.EqualTo(data.Length * NpyDTypes.SizeInBytes(dtype) % 64), "data starts 64-aligned");
            var a = Npy.Read(path);
            Assert.That(a.DType, Is.EqualTo(dtype), name);
            Assert.That(a.Shape.ToArray(), Is.EqualTo(shape), name);
            Assert.That(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(a.RawBytes).ToArray(), Is.EqualTo(data), name);
        }
    }

    [Test]
    public void Conversions_FloatFromAnything_IntOnlyFromIntegers()
    {
        Npy.Write<double>(PathOf("d.npy"), [0.1, 2.5], 2);
        Assert.That(Npy.Read(PathOf("d.npy")).ToSingleArray(), Is.EqualTo(new[] { 0.1f, 2.5f }));
        Npy.Write<long>(PathOf("labels.npy"), [6, 0, 3], 3);
        Assert.That(Npy.Read(PathOf("labels.npy")).ToInt32Array(), Is.EqualTo(new[] { 6, 0, 3 }));
        Assert.That(Npy.Read(PathOf("labels.npy")).ToSingleArray(), Is.EqualTo(new[] { 6f, 0f, 3f }));
        Npy.Write<byte>(PathOf("u8.npy"), [200], 1);
        Assert.That(Npy.Read(PathOf("u8.npy")).ToInt32Array(), Is.EqualTo(new[] { 200 }));

        Npy.Write<long>(PathOf("big.npy"), [1, 1L << 40], 2);
        var e = Assert.Throws<NpyFormatException>(() => Npy.Read(PathOf("big.npy")).ToInt32Array());
        Assert.That(e!.Message, Does.StartWith(PathOf("big.npy")).And.Contain("element 1 (1099511627776) does not fit"));
        e = Assert.Throws<NpyFormatException>(() => Npy.Read(PathOf("d.npy")).ToInt32Array());
        Assert.That(e!.Message, Does.Contain("expected integers, got float64"));
    }

    [Test]
    public void Reader_AcceptsVersions2And3_AndHeaderVariations()
    {
        var data = new float[] { 1, 2, 3, 4, 5, 6 }.SelectMany(BitConverter.GetBytes).ToArray();
        var v2 = Npy.Read(WriteRaw("v2.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data, major: 2));
        Assert.That(v2.Shape.ToArray(), Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(v2.ToSingleArray(), Is.EqualTo(new float[] { 1, 2, 3, 4, 5, 6 }));
        var v3 = Npy.Read(WriteRaw("v3.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", data, major: 3));
        Assert.That(v3.Shape.ToArray(), Is.EqualTo(new long[] { 6 }));
        // Keys in another order, double quotes, Python 2 long suffixes, '=' byte order, no trailing comma.
        var odd = Npy.Read(WriteRaw("odd.npy", "{\"shape\": (3L,2L), \"fortran_order\": False, \"descr\": \"=f4\"}", data));
        Assert.That(odd.Shape.ToArray(), Is.EqualTo(new long[] { 3, 2 }));
        Assert.That(odd.DType, Is.EqualTo(NpyDType.Float32));
        // A 1-D array reads the same in Fortran order.
        Assert.That(Npy.Read(WriteRaw("f1.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", data)).ElementCount, Is.EqualTo(6));
    }

    [Test]
    public void Writer_FallsBackToVersion2_WhenTheHeaderOutgrows64KiB()
    {
        var shape = Enumerable.Repeat(1L, 25000).ToArray(); // "(1, 1, 1, ...)" is 75,000 characters
        Npy.Write<float>(PathOf("deep.npy"), [4.5f], shape);
        var bytes = File.ReadAllBytes(PathOf("deep.npy"));
        Assert.That(bytes[6], Is.EqualTo(2));
        var a = Npy.Read(PathOf("deep.npy"));
        Assert.That(a.Rank, Is.EqualTo(25000));
        Assert.That(a.ToSingleArray(), Is.EqualTo(new[] { 4.5f }));
    }

    [Test]
    public void BadFiles_FailWithTheFileNameAndTheReason()
    {
        var four = new byte[16];
        Expect(WriteRaw("garbage-header.npy", "x", four), "malformed header (expected '{' at character 0): x");
        File.WriteAllBytes(PathOf("bad-magic.npy"), "PK\x03\x04 zip, not npy"u8.ToArray());
        Expect(PathOf("bad-magic.npy"), "not a .npy file");
        File.WriteAllBytes(PathOf("short-header.npy"), [.. Magic, 1, 0, 118, 0, .. "{'descr'"u8]);
        Expect(PathOf("short-header.npy"), "truncated: the file ends inside the header");
        Expect(WriteRaw("truncated.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", new byte[20]),
            "truncated: the header promises float32 (3, 4) (48 bytes of data) but only 20 bytes follow");
        Expect(WriteRaw("extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new byte[12]), "unexpected bytes after the data");
        Expect(WriteRaw("complex.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", four),
            "unsupported dtype '<c8' (supported: float32 (<f4), float64 (<f8), int32 (<i4), int64 (<i8), uint8 (|u1))");
        Expect(WriteRaw("half.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", four), "unsupported dtype '<f2'");
        Expect(WriteRaw("big-endian.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", four),
            "big-endian data ('>f4') is not supported; convert it with a.astype('<f4')");
        Expect(WriteRaw("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four),
            "stored in Fortran (column-major) order; save it in C order with np.save(path, np.ascontiguousarray(a))");
        Expect(WriteRaw("struct.npy", "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (4,), }", four), "structured arrays are not supported");
        Expect(WriteRaw("noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", four), "the header has no 'shape' entry");
        Expect(WriteRaw("badshape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2), }", four), "malformed header (expected a non-negative integer dimension");
        Expect(WriteRaw("v9.npy", "{}", four, major: 9), "unsupported .npy format version 9.0");
        Expect(PathOf("missing.npy"), "no such file");

        void Expect(string path, string message)
        {
            var e = Assert.Throws<NpyFormatException>(() => Npy.Read(path), Path.GetFileName(path));
            Assert.That(e!.Message, Does.StartWith(path + ": ").And.Contain(message));
            Assert.That(e.Path, Is.EqualTo(path));
        }
    }

    [Test]
    public void ShapeChecks_NameTheFileAndWhatWasExpected()
    {
        Npy.Write<float>(PathOf("f.npy"), new float[24], 2, 3, 4);
        var a = Npy.Read(PathOf("f.npy"));
        var e = Assert.Throws<NpyFormatException>(() => a.RequireMatrix("features"));
        Assert.That(e!.Message, Is.EqualTo($"{PathOf("f.npy")}: features must be a 2-D array [rows, columns], got shape (2, 3, 4)."));
        e = Assert.Throws<NpyFormatException>(() => a.RequireVector("labels"));
        Assert.That(e!.Message, Does.Contain("labels must be a 1-D array, got shape (2, 3, 4)"));
    }
}
