// Fallback launcher, used by start.sh only when hadoop-client-minicluster lacks
// org.apache.hadoop.test.MiniDFSClusterManager. Same contract: NameNode + DataNode in this JVM,
// RPC on 127.0.0.1:8020, HTTP (WebHDFS) on 9870 (or the ports given), the configuration written to
// a marker file once the DataNode registered, then block until SIGTERM.
//
// Usage: java -cp CONF:LIB/*:CLASSES MnaasMiniHdfs BASE_DIR MARKER_FILE [RPC_PORT HTTP_PORT [keep]]
// (keep: start on the storage already in BASE_DIR, unformatted, as start.sh does with MNAAS_HDFS_KEEP=1)

import java.io.File;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.util.concurrent.CountDownLatch;

import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

public final class MnaasMiniHdfs {
  private MnaasMiniHdfs() {
  }

  public static void main(String[] args) throws Exception {
    final HdfsConfiguration conf = new HdfsConfiguration();
    final int rpcPort = args.length > 2 ? Integer.parseInt(args[2]) : 8020;
    final int httpPort = args.length > 3 ? Integer.parseInt(args[3]) : 9870;
    final boolean keep = args.length > 4 && "keep".equals(args[4]);
    final MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf, new File(args[0]))
        .nameNodePort(rpcPort).nameNodeHttpPort(httpPort).numDataNodes(1).format(!keep).build();
    cluster.waitActive();
    final File marker = new File(args[1]);
    final File tmp = new File(args[1] + ".tmp");
    try (OutputStream out = new FileOutputStream(tmp)) {
      cluster.getConfiguration(0).writeXml(out);
    }
    if (!tmp.renameTo(marker)) {
      throw new IllegalStateException("cannot write " + marker);
    }
    final CountDownLatch stop = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      cluster.shutdown();
      stop.countDown();
    }));
    stop.await();
  }
}
