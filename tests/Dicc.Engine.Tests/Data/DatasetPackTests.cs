using Dicc.Engine.Data;
using NUnit.Framework;
using static Dicc.Engine.Tests.Support.DataTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Data;

public class DatasetPackTests
{
    [Test]
    public void WriteThenOpen_RoundTripsEverything()
    {
        using var dir = new TempDirectory();
        var faces = Faces(5);
        WriteSplitFolder(dir["data"], faces, perClassTrain: 3, perClassTest: 2);
        File.WriteAllText(Path.Combine(dir["data"], "train", "angry", "bad.png"), "not a png");
        using var source = DatasetLoader.Load(dir["data"], Plain with { OnBadImage = BadInputPolicy.Skip, ValidationFraction = 0.34 });

        DatasetPack.Write(source, dir["data.diccpack"], dir["data"]);
        using var pack = DatasetPack.Open(dir["data.diccpack"]);

        Assert.That(pack.PackPath, Is.EqualTo(dir["data.diccpack"]));
        Assert.That(pack.Origin, Is.EqualTo(DatasetOrigin.ImageFolder));
        Assert.That(pack.ClassNames, Is.EqualTo(source.ClassNames));
        Assert.That(pack.Fingerprint, Is.EqualTo(source.Fingerprint).And.Not.Null);
        Assert.That(pack.ValidationHeldOut, Is.True);
        Assert.That(pack.Skipped, Is.EqualTo(source.Skipped));
        foreach (var split in SplitNames.All)
        {
            Assert.That(pack[split].Split, Is.EqualTo(split));
            Assert.That(pack[split].Pixels.ToArray(), Is.EqualTo(source[split].Pixels.ToArray()), split.Name());
            Assert.That(pack[split].Labels.ToArray(), Is.EqualTo(source[split].Labels.ToArray()));
            Assert.That(pack[split].Sources!.Select(Path.GetFullPath), Is.EqualTo(source[split].Sources!.Select(Path.GetFullPath)));
        }
    }

    [Test]
    public void Loader_WritesACache_UsesItWhileFresh_AndRebuildsItWhenTheSourceChanges()
    {
        using var dir = new TempDirectory();
        var faces = Faces(4);
        WriteSplitFolder(dir["data"], faces, perClassTrain: 3, perClassTest: 1);
        var options = Plain with { Cache = PackCacheMode.ReadWrite, CacheDirectory = dir["cache"] };

        using var first = DatasetLoader.Load(dir["data"], options);
        Assert.That(first.PackPath, Is.Null);
        Assert.That(File.Exists(DatasetLoader.CachePath(dir["data"], options)));

        using var second = DatasetLoader.Load(dir["data"], options);
        Assert.That(second.PackPath, Is.EqualTo(DatasetLoader.CachePath(dir["data"], options)), "fresh: mapped, not decoded");
        Assert.That(second.Train.Pixels.ToArray(), Is.EqualTo(first.Train.Pixels.ToArray()));
        Assert.That(second.Train.Sources, Is.EqualTo(first.Train.Sources), "sources come back in the caller's form");

        // Replacing one image (new content and time) makes the cache stale.
        var changed = first.Train.Sources![0];
        WriteImage(changed, faces.Image(faces.Count - 1));
        File.SetLastWriteTimeUtc(changed, DateTime.UtcNow.AddMinutes(1));
        using var third = DatasetLoader.Load(dir["data"], options);
        Assert.That(third.PackPath, Is.Null, "stale: decoded again");
        Assert.That(third.Train.Image(0).ToArray(), Is.EqualTo(faces.Image(faces.Count - 1).ToArray()));

        // An added file, and a change of options, also make it stale.
        WriteFace(faces, 0, Path.Combine(dir["data"], "train", "happy"), "zz_new.png");
        using var fourth = DatasetLoader.Load(dir["data"], options);
        Assert.That(fourth.PackPath, Is.Null);
        Assert.That(fourth.Train.Count, Is.EqualTo(third.Train.Count + 1));
        using var fifth = DatasetLoader.Load(dir["data"], options with { ValidationFraction = 0.5 });
        Assert.That(fifth.PackPath, Is.Null);
        using var sixth = DatasetLoader.Load(dir["data"], options with { ValidationFraction = 0.5 });
        Assert.That(sixth.PackPath, Is.Not.Null);

        // ReadOnly uses the fresh pack but never writes one.
        using var readOnly = DatasetLoader.Load(dir["data"], options with { Cache = PackCacheMode.ReadOnly, ValidationFraction = 0.25 });
        Assert.That(readOnly.PackPath, Is.Null);
        Assert.That(readOnly.CacheNote, Is.Null);
    }

    [Test]
    public void PackBesideTheData_IsFoundAutomatically_AndLoadableDirectly()
    {
        using var dir = new TempDirectory();
        var faces = Faces(2);
        Fer2013Csv.Write(dir["fer.csv"], [faces]);
        var options = Plain with { Cache = PackCacheMode.ReadOnly, CacheDirectory = dir["nowhere"] };

        using (var created = DatasetPack.Create(dir["fer.csv"], dir["fer.diccpack"], options)) { }
        using var viaSource = DatasetLoader.Load(dir["fer.csv"], options);
        Assert.That(viaSource.PackPath, Is.EqualTo(dir["fer.diccpack"]));
        using var direct = DatasetLoader.Load(dir["fer.diccpack"]);
        Assert.That(direct.Origin, Is.EqualTo(DatasetOrigin.Fer2013Csv));
        Assert.That(direct.Train.Pixels.ToArray(), Is.EqualTo(faces.Pixels.ToArray()));
        Assert.That(DatasetLoader.Detect(dir["fer.diccpack"]), Is.EqualTo(DatasetLoader.SourceKind.Pack));
    }

    [Test]
    public void DamagedPacks_AreNamed_AndADamagedCacheIsOnlyRebuilt()
    {
        using var dir = new TempDirectory();
        var faces = Faces(2);
        Fer2013Csv.Write(dir["fer.csv"], [faces]);
        using (DatasetPack.Create(dir["fer.csv"], dir["fer.diccpack"], Plain)) { }
        var bytes = File.ReadAllBytes(dir["fer.diccpack"]);

        File.WriteAllBytes(dir["cut.diccpack"], bytes[..^100]);
        var cut = Assert.Throws<DataFormatException>(() => DatasetPack.Open(dir["cut.diccpack"]))!;
        Assert.That(cut.Message, Does.StartWith(dir["cut.diccpack"] + ": truncated or damaged pack"));

        var badLabel = (byte[])bytes.Clone();
        long labelsOffset = BitConverter.ToInt64(bytes, 56);
        badLabel[labelsOffset] = 99;
        File.WriteAllBytes(dir["label.diccpack"], badLabel);
        Assert.That(Assert.Throws<DataFormatException>(() => DatasetPack.Open(dir["label.diccpack"]))!.Message, Does.Contain("label 99"));

        var badJson = (byte[])bytes.Clone();
        badJson[130] = (byte)'!';
        File.WriteAllBytes(dir["json.diccpack"], badJson);
        Assert.That(Assert.Throws<DataFormatException>(() => DatasetPack.Open(dir["json.diccpack"]))!.Message, Does.Contain("damaged pack metadata"));

        // A damaged pack beside the data with a matching fingerprint is ignored, not fatal.
        File.WriteAllBytes(dir["fer.diccpack"], badLabel);
        using var data = DatasetLoader.Load(dir["fer.csv"], Plain with { Cache = PackCacheMode.ReadOnly });
        Assert.That(data.PackPath, Is.Null);
        Assert.That(data.Train.Count, Is.EqualTo(faces.Count));
    }

    [Test]
    public void PackMetadataWithNulls_IsDamaged()
    {
        using var dir = new TempDirectory();
        Fer2013Csv.Write(dir["fer.csv"], [Faces(1)]);
        using (DatasetPack.Create(dir["fer.csv"], dir["fer.diccpack"], Plain)) { }
        var bytes = File.ReadAllBytes(dir["fer.diccpack"]);
        long offset = BitConverter.ToInt64(bytes, 40), length = BitConverter.ToInt64(bytes, 48);
        var json = System.Text.Encoding.UTF8.GetString(bytes, (int)offset, (int)length);
        // Same length, so the layout stays valid: only the content is wrong.
        var nulled = json.Replace("\"ClassNames\":[", "\"ClassNames\":null,\"X\":[");
        Assert.That(nulled, Is.Not.EqualTo(json));
        var damaged = System.Text.Encoding.UTF8.GetBytes(nulled);
        var patched = bytes[..(int)offset].Concat(damaged).Concat(bytes[(int)(offset + length)..]).ToArray();
        BitConverter.GetBytes((long)damaged.Length).CopyTo(patched, 48);
        long shift = damaged.Length - length;
        foreach (int field in new[] { 56, 64, 72 }) BitConverter.GetBytes(BitConverter.ToInt64(bytes, field) + shift).CopyTo(patched, field);
        File.WriteAllBytes(dir["nulls.diccpack"], patched);
        var e = Assert.Throws<DataFormatException>(() => DatasetPack.Open(dir["nulls.diccpack"]))!;
        Assert.That(e.Message, Is.EqualTo($"{dir["nulls.diccpack"]}: damaged pack metadata (missing values)"));
    }

    [Test]
    public void DisposedPack_RefusesAccess()
    {
        using var dir = new TempDirectory();
        Fer2013Csv.Write(dir["fer.csv"], [Faces(1)]);
        using (DatasetPack.Create(dir["fer.csv"], dir["fer.diccpack"], Plain)) { }
        var pack = DatasetPack.Open(dir["fer.diccpack"]);
        var train = pack.Train;
        pack.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = train.Pixels.Span.Length);
    }
}
