using System.Text.Json;
using Dicc.Engine.Evaluation;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Evaluation;

public class EvaluationJsonTests
{
    private static EvaluationReport SampleReport()
    {
        // Class "c" never occurs: its AP and its (medium) group's accuracy are undefined and must come out
        // as null, never NaN. Groups by training count: b many, c medium, a few.
        float[] scores = [0.6f, 0.3f, 0.1f, 0.2f, 0.7f, 0.1f, 0.5f, 0.4f, 0.1f];
        return EvaluationReport.Compute(["a", "b", "c"], [0, 1, 1], [0, 1, 0], scores, trainCounts: [10, 30, 20]);
    }

    [Test]
    public void Report_SerialisesWithCamelCaseNullsForUndefinedAndEnumNames()
    {
        string json = SampleReport().ToJson();
        using var doc = JsonDocument.Parse(json); // strict JSON: a bare NaN would fail here
        var root = doc.RootElement;
        Assert.That(root.GetProperty("balancedAccuracy").GetDouble(), Is.EqualTo(0.75));
        Assert.That(root.GetProperty("classes")[2].GetProperty("averagePrecision").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(root.GetProperty("classes")[0].GetProperty("group").GetString(), Is.EqualTo("few"));
        Assert.That(root.GetProperty("confusionMatrix")[1][0].GetInt64(), Is.EqualTo(1));
        Assert.That(root.GetProperty("precisionRecallCurves")[1].GetProperty("recall").GetArrayLength(), Is.EqualTo(4), "3 distinct scores + end point");
        Assert.That(root.GetProperty("shotGroups").GetProperty("groups")[2].GetProperty("group").GetString(), Is.EqualTo("few"));
        Assert.That(root.GetProperty("shotGroups").GetProperty("groups")[1].GetProperty("accuracy").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(json, Does.Not.Contain("NaN"));
        // Number arrays stay on one line: a confusion row, a whole curve.
        Assert.That(json, Does.Contain("[[1,0,0],[1,1,0],[0,0,0]"));
        Assert.That(json.Split('\n').Select(l => l.Trim()),
            Has.Some.EqualTo("\"thresholds\": [0.20000000298023224,0.5,0.6000000238418579],"), "class a: scores 0.6, 0.2, 0.5 as float");
    }

    [Test]
    public void Report_RoundTripsThroughJsonAndThroughAFile()
    {
        var report = SampleReport();
        var again = EvaluationReport.FromJson(report.ToJson());
        Assert.That(again.ToJson(), Is.EqualTo(report.ToJson()));
        Assert.That(again.Classes[1], Is.EqualTo(report.Classes[1]), "records compare by value");
        Assert.That(again.PrecisionRecallCurves![0].Precision, Is.EqualTo(report.PrecisionRecallCurves![0].Precision));

        string path = Path.Combine(Path.GetTempPath(), $"dicc-report-{Guid.NewGuid():N}.json");
        try
        {
            report.Save(path);
            Assert.That(EvaluationReport.Load(path).ToJson(), Is.EqualTo(report.ToJson()));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void MalformedReport_IsAnErrorNamingTheFile()
    {
        var e = Assert.Throws<InvalidDataException>(() => EvaluationReport.FromJson("{\"accuracy\": \"high\"}", "runs/r1/report.json"));
        Assert.That(e!.Message, Does.StartWith("runs/r1/report.json: not a valid EvaluationReport"));
        var missing = Assert.Throws<InvalidDataException>(() => EvaluationReport.FromJson("{\"accuracy\": 0.5}", "r.json"));
        Assert.That(missing!.Message, Does.StartWith("r.json: not a valid EvaluationReport"));
        Assert.That(() => EvaluationReport.FromJson("null", "r.json"), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("JSON null"));
    }

    [Test]
    public void RunResult_IsOneLineOfJsonAndRoundTrips()
    {
        var run = RunResult.FromReport("FER2013", 100, "none", "dicc", 3, SampleReport());
        string line = EvaluationJson.Serialize(run);
        Assert.That(line, Does.Not.Contain("\n"));
        var back = EvaluationJson.DeserializeRunResult(line, "results.jsonl:1");
        Assert.That((back.Dataset, back.Beta, back.Rule, back.Method, back.Seed), Is.EqualTo(("FER2013", (double?)100, "none", "dicc", 3L)));
        Assert.That(back.Metrics, Is.EquivalentTo(run.Metrics));
        Assert.That(run.Metrics.Keys, Is.SupersetOf(new[]
        {
            MetricNames.Accuracy, MetricNames.BalancedAccuracy, MetricNames.MacroF1, MetricNames.MeanAveragePrecision,
            MetricNames.ManyShotAccuracy, MetricNames.FewShotAccuracy,
        }));
        Assert.That(run.Metrics.ContainsKey(MetricNames.MediumShotAccuracy), Is.False, "a group without test samples has no accuracy");
    }
}
