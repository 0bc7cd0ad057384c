using System.Diagnostics;
using System.Text.Json;
using Dicc.Engine.IO;
using NUnit.Framework;

namespace Dicc.Engine.Tests.IO;

/// <summary>
/// Our checkpoints must open in Python. A reader written from the format description alone (stdlib only:
/// struct + json, so it runs wherever python3 does) reads a file we wrote and reports every tensor's values;
/// they must equal what we wrote. Skipped, with the reason, where python3 is not installed.
/// </summary>
public class SafetensorsPythonCrossCheckTests
{
    private const string PythonReader = """
        import json, struct, sys
        path = sys.argv[1]
        with open(path, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n].decode("utf-8"))
        metadata = header.pop("__metadata__", {})
        codes = {"F32": "f", "F64": "d", "I32": "i", "I64": "q", "U8": "B", "BOOL": "?"}
        base = 8 + n
        tensors = {}
        end = 0
        for name, info in header.items():
            begin, stop = info["data_offsets"]
            count = 1
            for d in info["shape"]:
                count *= d
            values = struct.unpack("<%d%s" % (count, codes[info["dtype"]]), raw[base + begin:base + stop])
            tensors[name] = {"dtype": info["dtype"], "shape": info["shape"], "values": list(values)}
            end = max(end, stop)
        print(json.dumps({"header_length": n, "data_aligned": base % 8 == 0,
                          "covers_file": base + end == len(raw), "metadata": metadata, "tensors": tensors}))
        """;

    private static string? FindPython()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            foreach (string name in new[] { "python3", "python3.exe" })
            {
                string candidate = Path.Combine(dir, name);
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    [Test]
    public void AFileWeWrite_IsReadByAStdlibPythonReader()
    {
        string? python = FindPython();
        if (python is null) Assert.Ignore("python3 is not on PATH: the cross-check with a Python reader was skipped.");

        string folder = Path.Combine(Path.GetTempPath(), "dicc-py-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            float[] weights = [0.25f, -1.5f, 3.0e-8f, 65504f, -0f, 1f / 3f];
            double[] centers = [Math.PI, -Math.E, 1e300];
            int[] labels = [0, 6, -3, int.MaxValue];
            long[] step = [1234567890123L];
            byte[] pixels = [0, 128, 255];
            bool[] mask = [true, false];
            string file = Path.Combine(folder, "checkpoint.safetensors");
            SafetensorsFile.Save(file, new Dictionary<string, SafetensorsTensor>
            {
                ["backbone.features.0.weight"] = SafetensorsTensor.From(weights, 2, 3),
                ["dicc.centers"] = SafetensorsTensor.From(centers, 3, 1),
                ["labels"] = SafetensorsTensor.From(labels, 4),
                ["optimizer.step"] = SafetensorsTensor.From(step, []),
                ["pixels"] = SafetensorsTensor.From(pixels, 1, 3),
                ["mask"] = SafetensorsTensor.From(mask, 2),
            }, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "préservé \"as is\"" });
            string script = Path.Combine(folder, "read_safetensors.py");
            File.WriteAllText(script, PythonReader);

            var start = new ProcessStartInfo(python, [script, file])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            using var process = Process.Start(start)!;
            string stdout = process.StandardOutput.ReadToEnd();
            string stderr = process.StandardError.ReadToEnd();
            Assert.That(process.WaitForExit(60_000), "python3 finished within a minute");
            Assert.That(process.ExitCode, Is.EqualTo(0), "python3 failed: " + stderr);

            using var doc = JsonDocument.Parse(stdout);
            var root = doc.RootElement;
            Assert.That(root.GetProperty("header_length").GetInt64() % 8, Is.EqualTo(0));
            Assert.That(root.GetProperty("data_aligned").GetBoolean());
            Assert.That(root.GetProperty("covers_file").GetBoolean(), "the data section ends exactly at the end of the file");
            var metadata = root.GetProperty("metadata");
            Assert.That(metadata.GetProperty("format").GetString(), Is.EqualTo("pt"));
            Assert.That(metadata.GetProperty("note").GetString(), Is.EqualTo("préservé \"as is\""));

            var t = root.GetProperty("tensors");
            void Check(string name, string dtype, long[] shape, double[] expected)
            {
                var entry = t.GetProperty(name);
                Assert.That(entry.GetProperty("dtype").GetString(), Is.EqualTo(dtype), name);
                Assert.That(entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(shape), name);
                // Python widens float32 to float64 exactly and prints the shortest round-trip form: compare exactly.
                Assert.That(entry.GetProperty("values").EnumerateArray().Select(ToDouble), Is.EqualTo(expected), name);
            }
            Check("backbone.features.0.weight", "F32", [2, 3], weights.Select(v => (double)v).ToArray());
            Check("dicc.centers", "F64", [3, 1], centers);
            Check("labels", "I32", [4], labels.Select(v => (double)v).ToArray());
            Check("optimizer.step", "I64", [], step.Select(v => (double)v).ToArray());
            Check("pixels", "U8", [1, 3], pixels.Select(v => (double)v).ToArray());
            Check("mask", "BOOL", [2], [1, 0]);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    private static double ToDouble(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.True => 1,
        JsonValueKind.False => 0,
        _ => e.GetDouble(),
    };
}
