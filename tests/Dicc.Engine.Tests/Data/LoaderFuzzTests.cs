using System.Diagnostics;
using Dicc.Engine.Data;
using Dicc.Engine.Randomness;
using NUnit.Framework;
using static Dicc.Engine.Tests.Support.DataTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Data;

/// <summary>
/// Seeded mutation fuzzing of the loaders: valid files of every format (and CSV rows) with bytes flipped,
/// overwritten, inserted, deleted, or cut off. Whatever the damage, a load either succeeds or fails with one
/// DataFormatException line naming the file; under Skip it always succeeds and lists what it skipped.
/// </summary>
public class LoaderFuzzTests
{
    private static byte[] Mutate(byte[] original, RandomStream random)
    {
        var bytes = new List<byte>(original);
        int edits = 1 + random.NextInt(8);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.NextInt(bytes.Count);
            switch (random.NextInt(6))
            {
                case 0: bytes[at] ^= (byte)(1 << random.NextInt(8)); break;
                case 1: bytes[at] = (byte)random.NextInt(256); break;
                case 2: bytes.Insert(at, (byte)random.NextInt(256)); break;
                case 3: bytes.RemoveAt(at); break;
                case 4: bytes.RemoveRange(at, bytes.Count - at); break; // truncate
                default: bytes[at] = random.NextInt(2) == 0 ? (byte)0xFF : (byte)0x00; break; // marker-like and length-like bytes
            }
        }
        return bytes.ToArray();
    }

    [Test, CancelAfter(60_000)]
    public void MutatedImages_FailCleanlyOrLoad()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1, seed: 5);
        string[] formats = [".png", ".jpg", ".bmp", ".gif", ".tif"];
        var originals = formats.ToDictionary(f => f, f =>
        {
            var path = dir[$"original{f}"];
            WriteImage(path, faces.Image(3), colour: f == ".jpg");
            return File.ReadAllBytes(path);
        });

        var random = new RandomStream(2024);
        var stopwatch = Stopwatch.StartNew();
        int failures = 0, loads = 0, mutantsSkipped = 0;
        const int rounds = 60; // each round writes one mutant of every format into a fresh class folder
        for (int round = 0; round < rounds; round++)
        {
            var root = dir[$"round{round}"];
            foreach (var format in formats)
            {
                var path = Path.Combine(root, "happy", "mutant" + format);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllBytes(path, Mutate(originals[format], random));
            }
            WriteFace(faces, 0, Path.Combine(root, "angry"));

            try
            {
                using var data = DatasetLoader.Load(root, Plain);
                loads++;
                Assert.That(data.Train.Count, Is.EqualTo(formats.Length + 1));
            }
            catch (DataFormatException e)
            {
                failures++;
                Assert.That(e.Path, Does.StartWith(Path.Combine(root, "happy", "mutant")), e.Message);
                Assert.That(e.Message, Does.StartWith(e.Path + ": ").And.Not.Contain('\n'));
            }

            using var skipped = DatasetLoader.Load(root, Plain with { OnBadImage = BadInputPolicy.Skip });
            Assert.That(skipped.Train.Count + skipped.Skipped.Count, Is.EqualTo(formats.Length + 1));
            Assert.That(skipped.Train.Labels.ToArray(), Does.Contain(0), "the intact angry face always loads");
            Assert.That(skipped.Skipped.All(x => x.Path.StartsWith(Path.Combine(root, "happy", "mutant"))));
            mutantsSkipped += skipped.Skipped.Count;
        }
        TestContext.Out.WriteLine($"{rounds * formats.Length} mutants in {stopwatch.Elapsed.TotalSeconds:F1} s: {mutantsSkipped} rejected, " +
            $"{rounds * formats.Length - mutantsSkipped} decoded (mutations that keep a file valid); {failures} of {rounds} rounds failed under Fail, {loads} loaded");
        Assert.That(mutantsSkipped, Is.GreaterThan(rounds * formats.Length / 2), "most mutations must be caught");
    }

    [Test, CancelAfter(60_000)]
    public void MutatedCsv_FailsCleanlyOrLoads()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1, seed: 6);
        var text = string.Join('\n', new[] { "emotion,pixels,Usage" }.Concat(
            Enumerable.Range(0, faces.Count).Select(i => CsvRow(faces.Label(i), faces.Image(i), i % 2 == 0 ? "Training" : "PrivateTest"))));
        var original = System.Text.Encoding.ASCII.GetBytes(text);

        var random = new RandomStream(77);
        int failures = 0;
        for (int round = 0; round < 150; round++)
        {
            var path = dir[$"m{round}.csv"];
            File.WriteAllBytes(path, Mutate(original, random));
            try
            {
                using var data = DatasetLoader.Load(path, Plain);
                Assert.That(data.TotalCount, Is.LessThanOrEqualTo(faces.Count + 1));
            }
            catch (DataFormatException e)
            {
                failures++;
                Assert.That(e.Path, Is.EqualTo(path));
                Assert.That(e.Message, Does.Not.Contain('\n'));
            }
            try
            {
                using var skipped = DatasetLoader.Load(path, Plain with { OnBadImage = BadInputPolicy.Skip });
                Assert.That(skipped.Skipped.All(s => s.Path == path && s.Line is > 1));
            }
            catch (DataFormatException e)
            {
                // Only damage to the header, or to every row, can stop a skipping load.
                Assert.That(e.Message, Does.Contain("not a dataset").Or.Contain("no readable rows").Or.Contain("holds no rows").Or.Contain("columns"), e.Message);
            }
        }
        Assert.That(failures, Is.GreaterThan(50));
    }

    [Test, CancelAfter(60_000)]
    public void MutatedPacks_FailCleanlyOrOpen()
    {
        using var dir = new TempDirectory();
        Fer2013Csv.Write(dir["fer.csv"], [Faces(1, seed: 7)]);
        using (DatasetPack.Create(dir["fer.csv"], dir["fer.diccpack"], Plain)) { }
        var original = File.ReadAllBytes(dir["fer.diccpack"]);
        var random = new RandomStream(5);
        for (int round = 0; round < 200; round++)
        {
            var path = dir[$"p{round}.diccpack"];
            // Mutate the header and metadata more often than the pixels, where any byte is valid.
            var mutant = random.NextInt(2) == 0 ? Mutate(original, random) : [.. Mutate(original[..600], random), .. original[600..]];
            File.WriteAllBytes(path, mutant);
            try
            {
                using var data = DatasetLoader.Load(path, Plain);
                Assert.That(data.TotalCount, Is.GreaterThanOrEqualTo(0));
            }
            catch (DataFormatException e)
            {
                Assert.That(e.Path, Is.EqualTo(path));
            }
        }
    }
}
